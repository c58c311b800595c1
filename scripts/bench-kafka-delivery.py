"""Throughput of a Kafka -> Kafka pipeline per `delivery` mode of the kafka sink.

    PY=$(cat ${SLUICE_SERVICES_DIR:-/tmp/sluice-services}/kafka.python)
    $PY scripts/bench-kafka-delivery.py RECORDS path/to/sluice MODE...
    e.g. ... 500000 target/release/sluice at_least_once exactly_once

Produces RECORDS JSON records (~90 bytes) to a new 3-partition topic, then per MODE runs
`sluice run` (kafka source -> kafka sink, default checkpoint interval) and prints one
JSON line: the rate from the first committed offset until every input offset is
committed (the group join before it left out), and overall. Needs SLUICE_KAFKA_BROKERS.
"""
import sys, json, time, subprocess, uuid, os, tempfile
from confluent_kafka import Producer, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
bs = os.environ["SLUICE_KAFKA_BROKERS"]; N = int(sys.argv[1]); sluice = sys.argv[2]; modes = sys.argv[3:]
a = AdminClient({"bootstrap.servers": bs})
tag = uuid.uuid4().hex[:6]
inp = "bench-in-" + tag
for t, f in a.create_topics([NewTopic(inp, 3, 1)]).items(): f.result()
p = Producer({"bootstrap.servers": bs, "linger.ms": 20, "queue.buffering.max.messages": 1000000})
for i in range(N):
    while True:
        try:
            p.produce(inp, key=("k%d" % (i % 97)).encode(), value=json.dumps({"n": i, "amount": i * 1.5, "note": "x" * 40}).encode()); break
        except BufferError: p.poll(0.05)
    if i % 10000 == 0: p.poll(0)
p.flush(60)
def committed(g):
    c = Consumer({"bootstrap.servers": bs, "group.id": g, "isolation.level": "read_uncommitted"})
    r = sum(max(tp.offset, 0) for tp in c.committed([TopicPartition(inp, i) for i in range(3)], timeout=10)); c.close(); return r
for k, mode in enumerate(modes):
    out = "bench-out-%s-%s-%d" % (mode, tag, k); g = "bench-g-%s-%s-%d" % (mode, tag, k)
    for t, f in a.create_topics([NewTopic(out, 3, 1)]).items(): f.result()
    d = tempfile.mkdtemp(prefix="sluice-bench-%s-" % mode)
    open(d + "/p.yaml", "w").write(f"""name: bench-{mode}-{tag}-{k}
data_dir: {d}/data
sources:
  in: {{type: kafka, brokers: "{bs}", topics: [{inp}], group_id: {g}, session_timeout_ms: 6000}}
sinks:
  out: {{type: kafka, brokers: "{bs}", topic: {out}, delivery: {mode}, inputs: [in]}}
""")
    t0 = time.time()
    proc = subprocess.Popen([sluice, "run", d + "/p.yaml", "--no-progress"], stderr=open(d + "/log", "w"), stdout=subprocess.DEVNULL)
    first = None
    while True:
        c = committed(g)
        if c > 0 and first is None: first = (time.time(), c)
        if c >= N: break
        time.sleep(0.1)
        if time.time() - t0 > 300: print("timeout", c); break
    t1 = time.time()
    proc.terminate(); proc.wait()
    rate = (N - first[1]) / (t1 - first[0])
    print(json.dumps({"mode": mode, "records": N, "total_s": round(t1 - t0, 2), "rate_after_first_commit": int(rate), "rate_overall": int(N / (t1 - t0))}), flush=True)
