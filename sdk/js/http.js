// Outbound HTTP for connectors, through the host.
//
//   import { http, Retry } from "@sluice/plugin";
//
//   const resp = http.post(url, ndjson, [["Content-Type", "application/x-ndjson"]]);
//   if (resp.status >= 500) throw new Retry(`HTTP ${resp.status}: ${resp.text()}`);
//
// Inside the sandbox every request goes through the contract's
// `sluice:plugin/http` import: the host checks the URL's `host:port` against
// the pipeline's grant (`grants: {http: ["host:port"]}`) before connecting,
// does TLS, never follows redirects and bounds every request by the
// connector's `http_limits`. Natively, `withHttp` from
// `@sluice/plugin/testing` answers instead, so tests need no server.
//
// A response is whatever status came back (a 4xx or 5xx is a response, not
// an error). No response throws a subclass of `HttpError`: `Denied` (the
// grant does not cover the host; the message names the host and the grant),
// `Timeout`, `TooLarge` or `Failed`. One that escapes `poll`, `commit`,
// `write` or `flush` becomes a retry (`Timeout`, `Failed`) or stops the
// pipeline (`Denied`, `TooLarge`), with its message: the same mapping as the
// Python SDK's `sluice.http`.
//
// Calls are synchronous: the host's import blocks until the response (or its
// timeout), so a connector is plain sequential code with no promises.

import { parseJson } from "./json.js";

const encoder = new TextEncoder();
const lossy = new TextDecoder("utf-8");

/** A response, whatever its status. `body` is a `Uint8Array`. */
export class Response {
  constructor(status, headers = [], body = new Uint8Array()) {
    this.status = status;
    this.headers = headers.map(([n, v]) => [String(n), String(v)]);
    this.body = typeof body === "string" ? encoder.encode(body) : body;
  }

  /** The body as text (invalid UTF-8 replaced). */
  text() {
    return lossy.decode(this.body);
  }

  /** The body parsed as JSON; integers beyond ±(2^53 - 1) are BigInts (see `parseJson`). Throws on invalid JSON. */
  json() {
    return parseJson(this.text());
  }

  /** The first header called `name` (case-insensitive), or `undefined`. */
  header(name) {
    const lower = String(name).toLowerCase();
    const h = this.headers.find(([n]) => n.toLowerCase() === lower);
    return h === undefined ? undefined : h[1];
  }
}

/** No response came back. `kind` is `denied`, `timeout`, `too-large` or `failed`; `reason` is the host's explanation. */
export class HttpError extends Error {
  constructor(reason, kind = "failed") {
    super(`${kind}: ${reason}`);
    this.name = "HttpError";
    this.kind = kind;
    this.reason = String(reason);
  }
}

/** The pipeline's grant does not cover the host; the message names both. Stops the pipeline if it escapes. */
export class Denied extends HttpError {
  constructor(reason) {
    super(reason, "denied");
    this.name = "Denied";
  }
}

/** Connecting, the first byte or the body took longer than `http_limits`. Retried if it escapes. */
export class Timeout extends HttpError {
  constructor(reason) {
    super(reason, "timeout");
    this.name = "Timeout";
  }
}

/** The response is larger than `http_limits.max_response_kb`. Stops the pipeline if it escapes. */
export class TooLarge extends HttpError {
  constructor(reason) {
    super(reason, "too-large");
    this.name = "TooLarge";
  }
}

/** A malformed request, or a DNS, connection or TLS failure. Retried if it escapes. */
export class Failed extends HttpError {
  constructor(reason) {
    super(reason, "failed");
    this.name = "Failed";
  }
}

const ERRORS = { denied: Denied, timeout: Timeout, "too-large": TooLarge, failed: Failed };

/** The host's `http-error` variant (`{tag, val}`) as the matching `HttpError`. */
export function errorFromVariant(variant) {
  const Kind = ERRORS[variant?.tag] ?? Failed;
  return new Kind(variant?.val ?? String(variant));
}

function noTransport(request) {
  throw new Denied(`${request.url}: no HTTP in this native test; answer it with withHttp from @sluice/plugin/testing`);
}

// Who answers `send`: the host's import inside the sandbox (set by the build's
// generated entry), a test's handler under `withHttp`, else a refusal.
let transport = noTransport;

/** Replaces who answers `send`; returns the previous one. The build and `withHttp` use it. */
export function setTransport(fn) {
  const previous = transport;
  transport = fn;
  return previous;
}

function toBody(body) {
  if (body === undefined || body === null) return new Uint8Array();
  if (typeof body === "string") return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError("an HTTP body is a string or a Uint8Array");
}

/**
 * Sends `{method, url, headers, body}` (`headers` as `[name, value][]`, `body`
 * a string or bytes) and returns the `Response`; throws an `HttpError` when
 * none came back.
 */
export function send({ method = "GET", url, headers = [], body } = {}) {
  const request = {
    method: String(method),
    url: String(url),
    headers: headers.map(([n, v]) => [String(n), String(v)]),
    body: toBody(body),
  };
  return transport(request);
}

/** A `GET` of `url`. */
export function get(url, headers = []) {
  return send({ method: "GET", url, headers });
}

/** A `POST` of `body` (a string or bytes) to `url`. */
export function post(url, body, headers = []) {
  return send({ method: "POST", url, headers, body });
}
