#!/usr/bin/env python3
"""Sluice's postgres-cdc against real Debezium 3.6.1 on the same rows, in one run.

    export "$(scripts/services/postgres.sh start)"
    cargo build --release -p sluice
    python3 scripts/bench-debezium.py [--rows 100000]

For each of the two, in turn, on a fresh database with the same table
(id BIGINT PRIMARY KEY, name TEXT, n INT, at TIMESTAMPTZ) of ROWS rows: start it on its
own slot, time the snapshot until ROWS records are in its output file, then insert ROWS
more rows in 10,000-row transactions and time from the first insert until all of them
are in the file. CPU is the process's user+system time (/proc/PID/stat) over each
phase; the PostgreSQL server's is not counted. Debezium runs in the Debezium Engine
(scripts/toolchains/debezium-oracle.sh installs it), JSON converter without schemas,
one JSON line per record; Sluice runs `sluice run` with a postgres-cdc source and a file
sink. The JVM's start (to the engine's task start) is reported on its own, and is in
Debezium's snapshot time as `sluice run`'s start is in Sluice's.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def psql(url, sql):
    env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True,
                   stdout=subprocess.DEVNULL, env=env)


def peak_rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Counter:
    """Counts the complete lines of a growing file."""

    def __init__(self, path):
        self.path, self.offset, self.lines = path, 0, 0

    def count(self):
        if self.path.exists():
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
            self.offset += len(chunk)
            self.lines += chunk.count(b"\n")
        return self.lines


def wait_lines(counter, n, proc, timeout=600):
    deadline = time.monotonic() + timeout
    while counter.count() < n:
        if proc.poll() is not None:
            sys.exit(f"process exited ({proc.returncode}) at {counter.lines} of {n} lines")
        if time.monotonic() > deadline:
            sys.exit(f"only {counter.lines} of {n} lines after {timeout}s")
        time.sleep(0.02)


def start_debezium(work, url, db, out):
    oracle = subprocess.run(["bash", str(ROOT / "scripts/toolchains/debezium-oracle.sh")],
                            check=True, capture_output=True, text=True).stdout.split()[-1]
    rest = url.split("://", 1)[1]
    cred, addr = rest.split("@", 1)
    user, password = cred.split(":", 1)
    host, port = addr.split("/", 1)[0].split(":")
    props = work / "debezium.properties"
    props.write_text(f"""connector.class=io.debezium.connector.postgresql.PostgresConnector
database.hostname={host}
database.port={port}
database.user={user}
database.password={password}
database.dbname={db}
topic.prefix=bench
plugin.name=pgoutput
slot.name=bench_dbz
publication.name=bench_dbz
publication.autocreate.mode=filtered
table.include.list=public.t
slot.drop.on.stop=true
decimal.handling.mode=double
offset.storage=org.apache.kafka.connect.storage.FileOffsetBackingStore
offset.storage.file.filename={work / 'debezium.offsets'}
offset.flush.interval.ms=1000
""")
    return subprocess.Popen(
        ["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp",
         f"{oracle}/classes:{oracle}/libs/*", "DebeziumOracle", str(props), str(out), "0", "900"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(work / "debezium.log", "w"),
        text=True)


def start_sluice(work, url, db, out):
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    db_url = url.rsplit("/", 1)[0] + "/" + db
    pipeline = work / "p.yaml"
    pipeline.write_text(f"""name: bench
checkpoint_interval_ms: 200
sources:
  pg:
    type: postgres-cdc
    url: "{db_url}"
    name: bench
    slot: bench_sluice
    publication: bench_sluice
    tables: [t]
sinks:
  out: {{type: file, path: "{out}", format: envelope, inputs: [pg]}}
""")
    return subprocess.Popen([str(target / "release/sluice"), "run", str(pipeline), "--no-progress"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=open(work / "sluice.log", "w"))


def stop(proc, name):
    if name == "debezium":
        proc.stdin.close()
    else:
        proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(name, start, admin_url, rows):
    db = f"bench_{name}"
    psql(admin_url, f"DROP DATABASE IF EXISTS {db}")
    psql(admin_url, f"CREATE DATABASE {db}")
    url = admin_url.rsplit("/", 1)[0] + "/" + db
    psql(url, "CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT, n INT, at TIMESTAMPTZ);"
              f"INSERT INTO t SELECT i, 'name ' || i, i % 1000, now() FROM generate_series(1, {rows}) i")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        out = work / "out.jsonl"
        counter = Counter(out)
        t0 = time.monotonic()
        proc = start(work, admin_url, db, out)
        wait_lines(counter, rows, proc)
        snap_s = time.monotonic() - t0
        cpu0 = cpu_s(proc.pid)
        t1 = time.monotonic()
        for lo in range(rows + 1, 2 * rows + 1, 10_000):
            hi = min(lo + 9_999, 2 * rows)
            psql(url, f"INSERT INTO t SELECT i, 'name ' || i, i % 1000, now() FROM generate_series({lo}, {hi}) i")
        wait_lines(counter, 2 * rows, proc)
        stream_s = time.monotonic() - t1
        cpu1 = cpu_s(proc.pid)
        rss = peak_rss_mb(proc.pid)
        started = None
        if name == "debezium":
            line = proc.stdout.readline().split()
            started = int(line[1]) if len(line) == 2 and line[0] == "started" else None
        stop(proc, name)
        psql(admin_url, f"DROP DATABASE {db}")
    return snap_s, cpu0, stream_s, cpu1 - cpu0, started, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    admin = os.environ.get("SLUICE_PG_URL") or sys.exit("SLUICE_PG_URL is not set: export \"$(scripts/services/postgres.sh start)\"")
    print(f"{args.rows} snapshot rows, then {args.rows} streamed inserts in 10,000-row transactions")
    print("| | snapshot | snapshot CPU | stream | stream CPU | peak RSS |")
    print("|---|---|---|---|---|---|")
    for name, start in (("sluice", start_sluice), ("debezium", start_debezium)):
        snap_s, snap_cpu, stream_s, stream_cpu, started, rss = run(name, start, admin, args.rows)
        note = f" (JVM start to engine task: {started / 1000:.1f} s)" if started else ""
        print(f"| {name}{note} | {args.rows / snap_s:,.0f} rows/s ({snap_s:.2f} s) | {snap_cpu:.2f} s "
              f"| {args.rows / stream_s:,.0f} rows/s ({stream_s:.2f} s) | {stream_cpu:.2f} s | {rss:.0f} MB |",
              flush=True)


if __name__ == "__main__":
    main()
