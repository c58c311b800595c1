import { test } from "node:test";
import assert from "node:assert/strict";
import { clock, decodeBatch, exportReader, exportWriter, Fatal, http, Poll, positionText, Retry, Sink, Source } from "../index.js";
import { setClock } from "../clock.js";
import { Response, SinkHarness, SourceHarness, withClock, withHttp } from "../testing.js";

class Count extends Source {
  constructor(params, position) {
    super(params, position);
    params.only(["to"]);
    this.to = Number(params.get("to") ?? 3);
    this.next = position === undefined ? 0 : Number(positionText(position));
  }

  poll(maxEvents, out) {
    while (out.length < maxEvents && this.next < this.to) {
      out.emitJson({ n: this.next, big: 9007199254740993n }, { key: String(this.next), timestampMs: 2n ** 62n });
      this.next++;
    }
    out.malformed("{oops", "line 7: not JSON");
    out.position = String(this.next);
    out.caughtUp = this.next === this.to;
    out.done = out.caughtUp;
  }
}

test("a source's events, position and malformed inputs survive the contract's tables", () => {
  const src = new SourceHarness(Count, { to: "3" }, "1");
  const out = src.poll(10);
  assert.deepEqual(out.values(), ['{"big":9007199254740993,"n":1}', '{"big":9007199254740993,"n":2}']);
  assert.deepEqual(out.keys(), ["1", "2"]);
  assert.deepEqual(out.timestamps(), [2n ** 62n, 2n ** 62n]);
  assert.equal(out.positionText(), "3");
  assert.equal(out.done, true);
  const batch = decodeBatch({ ...out.encode(), streams: [] });
  assert.equal(batch.events[1].timestampMs, 2n ** 62n);
  assert.deepEqual(batch.events.map((e) => e.parent), [0, 1]);
  assert.deepEqual(out.malformedInputs, [[new TextEncoder().encode("{oops"), "line 7: not JSON"]]);
  assert.throws(() => new SourceHarness(Count, { ton: "3" }), /unknown parameter `ton`; allowed: to/);
});

test("the source harness holds a poll to the contract; caughtUp stays set", () => {
  class Greedy extends Source {
    poll(_max, out) {
      out.emit("a");
      out.emit("b");
    }
  }
  assert.throws(() => new SourceHarness(Greedy).poll(1), /poll returned 2 events, more than the 1 asked for/);
  // caughtUp stays set once set, as the contract says, even if a poll clears it.
  class Flaky extends Source {
    poll(_max, out) {
      this.n = (this.n ?? 0) + 1;
      this.started = this.started ?? [];
      this.started.push(out.caughtUp);
      out.caughtUp = this.n === 2;
    }
  }
  const h = new SourceHarness(Flaky);
  assert.deepEqual([h.poll().caughtUp, h.poll().caughtUp, h.poll().caughtUp], [false, true, true]);
  assert.deepEqual(h.source.started, [false, false, true]);
  assert.throws(() => new Poll().emit("x", { timestampMs: 2 ** 60 }), /not an exact integer; pass a BigInt/);
});

class Post extends Sink {
  constructor(params) {
    super(params);
    this.url = params.required("url");
    this.sent = 0;
  }

  write(events, rejected) {
    const resp = http.post(this.url, events.map((e) => e.text()).join("\n"));
    if (resp.status >= 500) throw new Retry(`HTTP ${resp.status}`);
    for (const e of events) {
      const v = e.json();
      if (v?.bad) rejected.reject(e, `refused ${v.id}`);
    }
    this.sent += events.length;
  }

  flush() {
    return String(this.sent);
  }
}

test("a sink gets 64-bit ids exactly, refuses per event and flushes a position", () => {
  const bodies = [];
  withHttp(
    (req) => {
      bodies.push(new TextDecoder().decode(req.body));
      return new Response(200, [], "{}");
    },
    () => {
      const sink = new SinkHarness(Post, { url: "http://bulk.test:9200/_bulk" });
      const refused = sink.write(['{"id":18446744073709551615}', '{"id":2,"bad":true}', null]);
      assert.deepEqual(refused, [[1, "refused 2"]]);
      assert.equal(sink.flushText(), "3");
    },
    { grant: ["bulk.test:9200"] },
  );
  assert.deepEqual(bodies, ['{"id":18446744073709551615}\n{"id":2,"bad":true}\n']);
});

test("HTTP errors map as in the host: denied and too-large stop, timeout and failed retry", () => {
  const sink = () => new SinkHarness(Post, { url: "http://elsewhere.test/x" });
  withHttp(() => new Response(200), () => {
    assert.throws(() => sink().write(["{}"]), (e) => e instanceof Fatal && e.message ===
      "denied: elsewhere.test:80 is not in this connector's grant (grants.http: [bulk.test:9200]); add it to the pipeline's `grants.http` if the connector should reach it");
  }, { grant: ["bulk.test:9200"] });
  withHttp(() => { throw new http.Timeout("no answer within 300 ms"); }, () => {
    assert.throws(() => sink().write(["{}"]), (e) => e instanceof Retry && e.message === "timeout: no answer within 300 ms");
  });
  withHttp(() => { throw new http.TooLarge("over 64 KiB"); }, () => {
    assert.throws(() => sink().write(["{}"]), (e) => e instanceof Fatal && e.message === "too-large: over 64 KiB");
  });
  withHttp(() => new Response(503, [], "busy"), () => {
    assert.throws(() => sink().write(["{}"]), (e) => e instanceof Retry && e.message === "HTTP 503");
  });
  assert.throws(() => sink().write(["{}"]), (e) => e instanceof Fatal && /no HTTP in this native test/.test(e.message));
});

test("the component exports adapt connectors to the contract's resources and variants", () => {
  const logs = [];
  const hostSend = (req) => {
    if (req.url.includes("denied")) throw { payload: { tag: "denied", val: "x:1 is not in this connector's grant" } };
    if (req.url.includes("slow")) throw { payload: { tag: "timeout", val: "slow" } };
    return { status: 200, headers: [["content-type", "application/json"]], body: new Uint8Array() };
  };
  const reader = exportReader({ Count }, { name: "count", version: "1.0.0" }, (l, m) => logs.push([l, m]), hostSend);
  assert.deepEqual(reader.describe(), { name: "count", version: "1.0.0", description: "" });
  const src = reader.Source.open([{ name: "to", value: "2" }], undefined);
  const polled = src.poll(1);
  assert.equal(polled.events.events.length, 48);
  assert.deepEqual([positionText(polled.position), polled.caughtUp, polled.done], ["1", false, false]);
  assert.equal(polled.malformed[0].reason, "line 7: not JSON");
  assert.throws(() => reader.Source.open([{ name: "from", value: "2" }]), (e) => e === "unknown parameter `from`; allowed: to");

  const writer = exportWriter({ Post }, { name: "post", version: "1.0.0" }, (l, m) => logs.push([l, m]), hostSend);
  const batch = (values) => {
    const p = new Poll();
    for (const v of values) p.emit(v);
    return { ...p.encode(), streams: ["in"] };
  };
  const ok = writer.Sink.open([{ name: "url", value: "http://ok/" }]);
  assert.deepEqual(ok.write(batch(['{"id":1}', '{"id":2,"bad":true}'])), [{ index: 1, reason: "refused 2" }]);
  assert.deepEqual(new TextDecoder().decode(ok.flush()), "2");
  const denied = writer.Sink.open([{ name: "url", value: "http://denied/" }]);
  assert.throws(() => denied.write(batch(["{}"])), (e) => e.tag === "fatal" && e.val === "denied: x:1 is not in this connector's grant");
  const slow = writer.Sink.open([{ name: "url", value: "http://slow/" }]);
  assert.throws(() => slow.write(batch(["{}"])), (e) => e.tag === "retry" && e.val === "timeout: slow");
  // A bug is logged and rethrown as itself, which traps the instance.
  assert.throws(() => ok.write(batch(["not json"])), (e) => e.name === "Reject");
  assert.equal(logs.at(-1)[0], "error");
  assert.match(logs.at(-1)[1], /^plugin threw Reject: value is not valid JSON: /);
  assert.throws(() => exportWriter({ Post, Other: class extends Sink {} }, { name: "x", version: "1" }),
    /must export exactly one class that extends Sink \(found: Other, Post\)/);
});

class Stamped extends Source {
  constructor(params, position) {
    super(params, position);
    this.started = clock.monotonicNs();
  }

  poll(maxEvents, out) {
    out.emitJson({ at: clock.nowMs(), sinceNs: clock.monotonicNs() - this.started });
    out.done = true;
  }
}

test("a fixed clock is read and advanced natively, and the machine's comes back after", () => {
  withClock(1700000000000, (fixed) => {
    const src = new SourceHarness(Stamped, {});
    fixed.advance(1500);
    assert.deepEqual(src.poll().values(), ['{"at":1700000001500,"sinceNs":1500000000}']);
  });
  assert.ok(Math.abs(clock.nowMs() - Date.now()) < 1000);
  assert.equal(typeof clock.monotonicNs(), "bigint");
});

test("a component reads the host's clock import (s64 and u64 arrive as BigInts)", () => {
  const previous = setClock({ nowMs: () => 0, monotonicNs: () => 0n });
  try {
    const reader = exportReader({ Stamped }, { name: "s", version: "1" }, () => {}, () => {}, {
      nowMs: () => 1700000000123n,
      monotonicNs: () => 42n,
    });
    const polled = reader.Source.open([], undefined).poll(1);
    assert.equal(polled.events.events.length, 48);
    assert.equal(clock.nowMs(), 1700000000123);
    assert.equal(clock.monotonicNs(), 42n);
  } finally {
    setClock(previous);
  }
});
