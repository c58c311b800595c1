"""Prints what the pipeline wrote: JSON orders and dead letters with their reason.

Usage: python consume.py   (env SLUICE_KAFKA_BROKERS)
"""
import os
import time
import uuid

from confluent_kafka import Consumer

BROKERS = os.environ.get("SLUICE_KAFKA_BROKERS", "127.0.0.1:19092")
c = Consumer({"bootstrap.servers": BROKERS, "group.id": "peek-" + uuid.uuid4().hex[:6],
              "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
c.subscribe(["orders-json", "orders-dlq"])
counts = {"orders-json": 0, "orders-dlq": 0}
idle = time.time()
while time.time() - idle < 8:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    idle = time.time()
    counts[m.topic()] += 1
    if m.topic() == "orders-dlq":
        print("dead letter:", dict(m.headers() or []).get("sluice.error.message", b"").decode())
    elif counts["orders-json"] <= 3:
        print("json:", m.value().decode())
c.close()
print(counts)
