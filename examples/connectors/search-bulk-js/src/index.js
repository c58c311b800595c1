// search-bulk-js: a sink connector that indexes events into Elasticsearch or
// OpenSearch with the `_bulk` API (newline-delimited JSON: one action line,
// then the document, per event).
//
// - Each event's value (a JSON object) is sent byte for byte, never parsed
//   into numbers and written back, so a 64-bit id stays exact.
// - `_id` comes from the `id_field` of the value, else the event's key, else
//   the cluster picks one. With an id, writing a batch again (a retry, a
//   rerun after a crash) overwrites the same documents: delivery is at least
//   once, and with ids effectively once.
// - A tombstone (an event with no value) deletes the document with its id;
//   deleting one that is already gone (404) counts as done.
// - The cluster answers 200 with a result per item. An item refused for good
//   (a mapping error, a version conflict: any other 4xx) is dead-lettered
//   alone, with the cluster's error type and reason. An item refused for now
//   (429, 5xx) makes the whole batch a `Retry`: the host writes it again after
//   a backoff, and the items already indexed are overwritten in place.
// - The request as a whole: 429 or 5xx is a `Retry`; 401 or 403 stops the
//   pipeline (the credentials are wrong: retrying will not help); any other
//   4xx dead-letters every event of the batch with the response text. A
//   timeout or connection failure is a retry (the SDK maps it); a host outside
//   the pipeline's `grants.http` stops the pipeline, naming the host.
//
// Parameters: `url` (the cluster, e.g. `https://search.internal:9200`,
// required), `index` (required), `id_field` (optional), `api_key` (optional:
// sent as `Authorization: ApiKey …`; give it from a connection or an allowed
// env variable, never in the pipeline file).

import { Fatal, http, Retry, Sink } from "@sluice/plugin";

/** Most characters of a response kept in a dead letter or a retry message. */
const MAX_TEXT = 300;

const encoder = new TextEncoder();
const NEWLINE = encoder.encode("\n");

/** "an object", "a string": a JSON kind with its article, for messages. */
function aKind(kind) {
  return /^[aeiou]/.test(kind) ? `an ${kind}` : `a ${kind}`;
}

function short(text) {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}

/** The `_id` for an event: `id_field` of its value (a string or an integer, as written), else its key. */
function documentId(event, view, idField) {
  if (idField !== undefined && view !== undefined) {
    const raw = view.get(idField);
    if (raw !== undefined) {
      if (raw.kind === "string") return raw.asString();
      if (raw.kind === "number" && raw.asBigInt() !== undefined) return raw.text;
      throw new Error(`\`${idField}\` is ${aKind(raw.kind)}; an id is a string or an integer`);
    }
  }
  return event.keyText;
}

/** Why an item failed, from the cluster's per-item `error`. */
function itemError(item) {
  const error = item.error;
  if (error === undefined || error === null) return `status ${item.status}`;
  if (typeof error === "string") return `${error} (status ${item.status})`;
  const cause = error.caused_by?.reason ? `; caused by: ${error.caused_by.reason}` : "";
  return `${error.type}: ${error.reason}${cause} (status ${item.status})`;
}

export class BulkSink extends Sink {
  constructor(params, position) {
    super(params, position);
    params.only(["url", "index", "id_field", "api_key"]);
    const url = params.required("url");
    if (!/^https?:\/\//.test(url)) throw new Error(`\`url\` must start with http:// or https://: ${url}`);
    this.url = `${url.replace(/\/+$/, "")}/_bulk`;
    this.index = params.required("index");
    this.idField = params.get("id_field");
    this.headers = [["Content-Type", "application/x-ndjson"]];
    const key = params.get("api_key");
    if (key !== undefined) this.headers.push(["Authorization", `ApiKey ${key}`]);
  }

  write(events, rejected) {
    // One action per event that can be sent; `sent[i]` is the event of item i.
    const chunks = [];
    const sent = [];
    for (const event of events) {
      let action;
      try {
        action = this.action(event, chunks);
      } catch (e) {
        rejected.reject(event, e.message);
        continue;
      }
      sent.push([event, action]);
    }
    if (sent.length === 0) return;

    const resp = http.post(this.url, concat(chunks), this.headers);
    if (resp.status === 429 || resp.status >= 500) throw new Retry(`HTTP ${resp.status}: ${short(resp.text())}`);
    if (resp.status === 401 || resp.status === 403) {
      throw new Fatal(`HTTP ${resp.status} from ${this.url}: ${short(resp.text())}; check \`api_key\``);
    }
    if (resp.status >= 400) {
      const reason = `HTTP ${resp.status}: ${short(resp.text())}`;
      for (const [event] of sent) rejected.reject(event, reason);
      return;
    }
    let body;
    try {
      body = resp.json();
    } catch (e) {
      throw new Retry(`the _bulk response is not JSON (${e.message}): ${short(resp.text())}`);
    }
    if (!body.errors) return;
    const items = body.items ?? [];
    if (items.length !== sent.length) {
      throw new Fatal(`the _bulk response has ${items.length} items for ${sent.length} actions`);
    }
    const retry = [];
    items.forEach((entry, i) => {
      const [event, action] = sent[i];
      const item = entry[action] ?? Object.values(entry)[0] ?? {};
      const status = Number(item.status);
      if (status < 300 || (action === "delete" && status === 404)) return;
      if (status === 429 || status >= 500) retry.push(itemError(item));
      else rejected.reject(event, itemError(item));
    });
    if (retry.length > 0) {
      throw new Retry(`${retry.length} of ${sent.length} items refused for now, first: ${short(retry[0])}`);
    }
  }

  /** Appends the action (and the document) for `event` to `chunks`; returns the action's name. */
  action(event, chunks) {
    const meta = { _index: this.index };
    if (event.isTombstone) {
      const id = event.keyText;
      if (id === undefined) throw new Error("a tombstone without a key names no document to delete");
      meta._id = id;
      chunks.push(encoder.encode(JSON.stringify({ delete: meta })), NEWLINE);
      return "delete";
    }
    const view = event.view(); // checks the JSON once; a bad value is refused here
    if (!view.isObject) throw new Error(`a document must be a JSON object, found ${aKind(view.root.kind)}`);
    const id = documentId(event, view, this.idField);
    if (id !== undefined) meta._id = id;
    // `_bulk` is one document per line: compact values have no raw newline
    // (JSON escapes it inside strings), pretty-printed ones do.
    const value = event.value;
    const doc = value.includes(0x0a) ? encoder.encode(event.view().root.text.replace(/\s*\n\s*/g, "")) : value;
    chunks.push(encoder.encode(JSON.stringify({ index: meta })), NEWLINE, doc, NEWLINE);
    return "index";
  }

  flush() {
    return ""; // every write is synchronous: nothing is buffered
  }
}

function concat(chunks) {
  let len = 0;
  for (const c of chunks) len += c.length;
  const out = new Uint8Array(len);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
