#!/usr/bin/env python3
"""The fair CPU share of `sluice serve`, measured: how many events per second
a quiet tenant's pipeline reads alone, and beside a noisy tenant running
three busy pipelines, under three settings:

  off       SLUICE_CPU_SHARE=off: the kernel alone shares the CPU (by thread)
  equal     both tenants cpu_weight = 100
  weighted  noisy 100, quiet 400

Every pipeline is the same: datagen orders as fast as they come, through the
`filter` plugin (which keeps none), to a file. One server per setting, one
run each, figures as ratios of the same run's "alone" phase.

The second table runs the quiet pipeline at a fixed rate (under one core on
a 2-core box), the case of a tenant whose demand is within its share.

  scripts/bench-cpu-share.py [--seconds 5] [--quiet-rate 500000] [--sluice target/release/sluice]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

ADMIN = "bench-operator-token-0123456789"

PIPELINE = """name: {name}
sources:
  gen: {{type: datagen, kind: orders{rate}}}
stages:
  none:
    plugin: filter
    inputs: [gen]
    params: {{where: "price < 0"}}
sinks:
  out: {{type: file, path: {name}.jsonl, inputs: [none]}}
"""


class Server:
    def __init__(self, sluice, config, env):
        self.dir = tempfile.TemporaryDirectory(prefix="cpu-share-")
        path = os.path.join(self.dir.name, "server.toml")
        with open(path, "w") as f:
            f.write('listen = "127.0.0.1:0"\ndata_dir = "data"\n' + config)
        self.proc = subprocess.Popen(
            [sluice, "serve", "--config", path],
            stdout=subprocess.PIPE,
            stderr=open(os.path.join(self.dir.name, "server.log"), "w"),
            env={**os.environ, "SLUICE_ADMIN_TOKEN": ADMIN, **env},
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("SLUICE_SERVER_URL="):
            sys.exit(f"server did not start: {line!r}")
        self.url = line.split("=", 1)[1]

    def call(self, method, path, token, body=None):
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def tenant(self, name):
        self.call("POST", "/v1/tenants", ADMIN, json.dumps({"name": name}))
        tok = self.call("POST", f"/v1/tenants/{name}/tokens", ADMIN,
                        json.dumps({"scope": "deploy"}))
        return tok["token"]

    def events_in(self, token, name):
        return self.call("GET", f"/v1/pipelines/{name}", token)["status"]["events_in"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.dir.cleanup()


def rate(server, token, name, seconds):
    """Events per second `name` reads over `seconds`, after 1.5 s of warm-up."""
    time.sleep(1.5)
    a, t0 = server.events_in(token, name), time.monotonic()
    time.sleep(seconds)
    b, t1 = server.events_in(token, name), time.monotonic()
    return (b - a) / (t1 - t0)


def pipeline(name, rate=None):
    return PIPELINE.format(name=name, rate=f", rate: {rate}" if rate else "")


def run(sluice, setting, seconds, quiet_rate):
    weights = {"off": (100, 100), "equal": (100, 100), "weighted": (100, 400)}[setting]
    config = (f"[tenants.noisy]\ncpu_weight = {weights[0]}\n"
              f"[tenants.quiet]\ncpu_weight = {weights[1]}\n")
    env = {"SLUICE_CPU_SHARE": "off"} if setting == "off" else {}
    s = Server(sluice, config, env)
    try:
        quiet, noisy = s.tenant("quiet"), s.tenant("noisy")
        s.call("POST", "/v1/pipelines", quiet, pipeline("q1", quiet_rate))
        alone = rate(s, quiet, "q1", seconds)
        for n in ("n1", "n2", "n3"):
            s.call("POST", "/v1/pipelines", noisy, pipeline(n))
        beside = rate(s, quiet, "q1", seconds)
        usage = {t: s.call("GET", f"/v1/tenants/{t}", ADMIN) for t in ("quiet", "noisy")}
        return alone, beside, usage
    finally:
        s.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--sluice", default=os.environ.get("SLUICE_BIN", "target/release/sluice"))
    ap.add_argument("--settings", default="off,equal,weighted")
    ap.add_argument("--quiet-rate", type=int, default=500000,
                    help="events/s of the quiet pipeline in the second table (0: skip it)")
    ap.add_argument("--only-rate", action="store_true", help="only the second table")
    args = ap.parse_args()
    tables = [] if args.only_rate else [("quiet as fast as it can", None)]
    if args.quiet_rate:
        tables.append((f"quiet at {args.quiet_rate:,} events/s", args.quiet_rate))
    for title, quiet_rate in tables:
        print(f"\n{title}")
        print(f"{'setting':<10} {'quiet alone ev/s':>17} {'beside noisy ev/s':>18} {'ratio':>6}"
              f" {'quiet CPU-s':>12} {'noisy CPU-s':>12} {'noisy waited s':>15}")
        for setting in args.settings.split(","):
            alone, beside, usage = run(args.sluice, setting, args.seconds, quiet_rate)
            print(f"{setting:<10} {alone:>17,.0f} {beside:>18,.0f} {beside / alone:>6.0%}"
                  f" {usage['quiet']['cpu_seconds']:>12.1f} {usage['noisy']['cpu_seconds']:>12.1f}"
                  f" {usage['noisy']['cpu_throttled_seconds']:>15.1f}", flush=True)


if __name__ == "__main__":
    main()
