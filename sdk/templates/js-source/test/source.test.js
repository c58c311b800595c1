import { test } from "node:test";
import assert from "node:assert/strict";
import { Retry } from "@sluice/plugin";
import { Response, SourceHarness, withHttp } from "@sluice/plugin/testing";
import { Connector } from "../src/index.js";

// A fake API over items 0..4, two per page at most.
function api(req) {
  const url = new URL(req.url);
  const from = Number(url.searchParams.get("cursor") || 0);
  const to = Math.min(from + Math.min(Number(url.searchParams.get("limit")), 2), 5);
  const items = [];
  for (let i = from; i < to; i++) items.push({ id: i });
  return new Response(200, [], JSON.stringify({ items, next: String(to) }));
}

test("pages through the API and resumes from its position", () => {
  withHttp(api, () => {
    const source = new SourceHarness(Connector, { url: "http://api.test/items", stop_when_caught_up: "true" });
    const polls = source.pollUntilDone();
    assert.deepEqual(polls.flatMap((p) => p.values()), ['{"id":0}', '{"id":1}', '{"id":2}', '{"id":3}', '{"id":4}']);
    assert.deepEqual(polls.map((p) => p.positionText()), ["2", "4", "5", "5"]);
    const resumed = new SourceHarness(Connector, { url: "http://api.test/items" }, "4");
    assert.deepEqual(resumed.poll().values(), ['{"id":4}']);
  }, { grant: ["api.test:80"] });
});

test("a 5xx is retried and a non-object item is reported as malformed", () => {
  const source = new SourceHarness(Connector, { url: "http://api.test/items" });
  withHttp(() => new Response(503), () => assert.throws(() => source.poll(), Retry));
  withHttp(() => new Response(200, [], '{"items":[[1],{"id":9007199254740993}],"next":"2"}'), () => {
    const out = source.poll();
    assert.deepEqual(out.values(), ['{"id":9007199254740993}']);
    assert.deepEqual(out.malformedInputs.map(([, reason]) => reason), ["expected a JSON object"]);
  });
});
