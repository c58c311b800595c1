import { test } from "node:test";
import assert from "node:assert/strict";
import { Retry } from "@sluice/plugin";
import { Response, SinkHarness, withHttp } from "@sluice/plugin/testing";
import { Connector } from "../src/index.js";

test("posts each batch as a JSON array, 64-bit integers unchanged", () => {
  const bodies = [];
  withHttp((req) => {
    bodies.push(new TextDecoder().decode(req.body));
    return new Response(200);
  }, () => {
    const sink = new SinkHarness(Connector, { url: "http://hook.test/in" });
    assert.deepEqual(sink.write(['{"id":18446744073709551615}', null]), []);
    assert.equal(sink.flushText(), "");
  }, { grant: ["hook.test:80"] });
  assert.deepEqual(bodies, ['[{"id":18446744073709551615},null]']);
});

test("a 5xx is retried and a 4xx dead-letters the batch with the response", () => {
  const sink = new SinkHarness(Connector, { url: "http://hook.test/in" });
  withHttp(() => new Response(503), () => assert.throws(() => sink.write(["{}"]), Retry));
  withHttp(() => new Response(400, [], "bad"), () => {
    assert.deepEqual(sink.write(["{}", "{}"]), [[0, "HTTP 400: bad"], [1, "HTTP 400: bad"]]);
  });
});
