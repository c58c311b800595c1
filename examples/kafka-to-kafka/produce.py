"""Creates the example's topics and produces Avro orders with confluent-kafka's
AvroSerializer (registering the schema in Sluice's registry), plus two records
that are not valid Confluent Avro, which the pipeline dead-letters.

Usage: python produce.py [N]   (env SLUICE_KAFKA_BROKERS, SLUICE_SCHEMA_REGISTRY_URL)
"""
import os
import sys

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

BROKERS = os.environ.get("SLUICE_KAFKA_BROKERS", "127.0.0.1:19092")
REGISTRY = os.environ.get("SLUICE_SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
SCHEMA = """{"type": "record", "name": "Order", "namespace": "shop", "fields": [
  {"name": "order_id", "type": "string"},
  {"name": "customer", "type": "string"},
  {"name": "amount", "type": "double"},
  {"name": "currency", "type": {"type": "enum", "name": "Currency", "symbols": ["eur", "usd", "aud"]}},
  {"name": "note", "type": ["null", "string"], "default": null}]}"""

admin = AdminClient({"bootstrap.servers": BROKERS})
existing = admin.list_topics(timeout=10).topics
new = [NewTopic(t, 3, 1) for t in ("orders-avro", "orders-json", "orders-dlq") if t not in existing]
for topic, f in (admin.create_topics(new).items() if new else []):
    f.result(15)

serialize = AvroSerializer(SchemaRegistryClient({"url": REGISTRY}), SCHEMA)
p = Producer({"bootstrap.servers": BROKERS})
for i in range(N):
    order = {"order_id": f"o-{i}", "customer": f"c-{i % 37}", "amount": round(i * 1.37 % 250, 2),
             "currency": ["eur", "usd", "aud"][i % 3], "note": None if i % 4 else "gift"}
    value = serialize(order, SerializationContext("orders-avro", MessageField.VALUE))
    p.produce("orders-avro", key=order["order_id"].encode(), value=value)
p.produce("orders-avro", key=b"bad-1", value=b'{"not": "avro"}')          # wrong magic byte
p.produce("orders-avro", key=b"bad-2", value=b"\x00\x00\x00\x03\xe7\x01")  # unknown schema id 999
p.flush(30)
print(f"produced {N} Avro orders and 2 bad records to orders-avro at {BROKERS}")
