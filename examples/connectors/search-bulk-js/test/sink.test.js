import { test } from "node:test";
import assert from "node:assert/strict";
import { Fatal, http, Retry } from "@sluice/plugin";
import { Response, SinkHarness, withHttp } from "@sluice/plugin/testing";
import { BulkSink } from "../src/index.js";

const PARAMS = { url: "http://search.test:9200/", index: "orders", id_field: "id", api_key: "k3y" };
const GRANT = { grant: ["search.test:9200"] };

/** The NDJSON lines of a request body, parsed. */
function lines(req) {
  return new TextDecoder().decode(req.body).trimEnd().split("\n").map((l) => JSON.parse(l));
}

test("indexes values byte for byte with ids from id_field, and deletes tombstones by key", () => {
  const seen = [];
  withHttp((req) => {
    seen.push(req);
    return new Response(200, [], '{"took":3,"errors":false,"items":[]}');
  }, () => {
    const sink = new SinkHarness(BulkSink, PARAMS);
    const refused = sink.write(['{"id":18446744073709551615,"total":1.50}', { key: "o-7", value: '{"sku":"a"}' }, { key: "o-8", value: null }]);
    assert.deepEqual(refused, []);
    assert.equal(sink.flushText(), "");
  }, GRANT);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].method, "POST");
  assert.equal(seen[0].url, "http://search.test:9200/_bulk");
  assert.deepEqual(seen[0].headers, [["Content-Type", "application/x-ndjson"], ["Authorization", "ApiKey k3y"]]);
  assert.equal(
    new TextDecoder().decode(seen[0].body),
    '{"index":{"_index":"orders","_id":"18446744073709551615"}}\n{"id":18446744073709551615,"total":1.50}\n' +
      '{"index":{"_index":"orders","_id":"o-7"}}\n{"sku":"a"}\n' +
      '{"delete":{"_index":"orders","_id":"o-8"}}\n',
  );
});

test("items the cluster refuses are dead-lettered one by one with its reason", () => {
  const answer = (req) => {
    const ls = lines(req);
    const items = [];
    for (let i = 0; i < ls.length; i += 2) {
      const bad = typeof ls[i + 1].total !== "number";
      items.push({ index: bad
        ? { status: 400, error: { type: "document_parsing_exception", reason: "failed to parse field [total]", caused_by: { reason: "not a number" } } }
        : { status: 201 } });
    }
    return new Response(200, [], JSON.stringify({ errors: true, items }));
  };
  withHttp(answer, () => {
    const sink = new SinkHarness(BulkSink, PARAMS);
    assert.deepEqual(sink.write(['{"id":1,"total":2}', '{"id":2,"total":"x"}', "[1]", "not json", '{"id":{"a":1}}']), [
      [2, "a document must be a JSON object, found an array"],
      [3, "value is not valid JSON: expected a value at byte 0"],
      [4, "`id` is an object; an id is a string or an integer"],
      [1, "document_parsing_exception: failed to parse field [total]; caused by: not a number (status 400)"],
    ]);
  }, GRANT);
});

test("429 and 5xx retry the batch, per request or per item; 401 stops; other 4xx refuse the batch", () => {
  const sink = new SinkHarness(BulkSink, PARAMS);
  const write = (resp) => withHttp(() => resp, () => sink.write(['{"id":1}', '{"id":2}']), GRANT);
  assert.throws(() => write(new Response(503, [], "no master")), (e) => e instanceof Retry && e.message === "HTTP 503: no master");
  assert.throws(
    () => write(new Response(200, [], '{"errors":true,"items":[{"index":{"status":201}},{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}]}')),
    (e) => e instanceof Retry && e.message === "1 of 2 items refused for now, first: es_rejected_execution_exception: queue full (status 429)",
  );
  assert.throws(() => write(new Response(401, [], "unauthorized")), (e) => e instanceof Fatal && /HTTP 401 from .*check `api_key`/.test(e.message));
  assert.deepEqual(write(new Response(413, [], "too big")), [[0, "HTTP 413: too big"], [1, "HTTP 413: too big"]]);
  assert.throws(
    () => withHttp(() => { throw new http.Timeout("no answer within 300 ms"); }, () => sink.write(['{"id":1}'])),
    (e) => e instanceof Retry && e.message === "timeout: no answer within 300 ms",
  );
});

test("a host outside the grant stops the pipeline, naming the host and the grant", () => {
  const sink = new SinkHarness(BulkSink, { ...PARAMS, url: "http://other.test:9200" });
  assert.throws(
    () => withHttp(() => new Response(200), () => sink.write(['{"id":1}']), GRANT),
    (e) => e instanceof Fatal && e.message.startsWith("denied: other.test:9200 is not in this connector's grant (grants.http: [search.test:9200])"),
  );
});

test("parameters are checked when the sink opens", () => {
  assert.throws(() => new SinkHarness(BulkSink, { url: "http://x:9200" }), /parameter `index` is required/);
  assert.throws(() => new SinkHarness(BulkSink, { ...PARAMS, idfield: "id" }), /unknown parameter `idfield`/);
  assert.throws(() => new SinkHarness(BulkSink, { ...PARAMS, url: "search.test:9200" }), /must start with http:\/\//);
});
