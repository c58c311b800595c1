// Types for the `http` namespace of @sluice/plugin (http.js): outbound HTTP
// for connectors, through the host's grant-checked `sluice:plugin/http` import.

/** An outgoing request; `headers` as `[name, value]` pairs, `body` text or bytes. */
export interface Request {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | string;
  url: string;
  headers?: [string, string][];
  body?: string | Uint8Array;
}

/** A response, whatever its status (a 4xx or 5xx is a response, not an error). */
export class Response {
  constructor(status: number, headers?: [string, string][], body?: string | Uint8Array);
  status: number;
  headers: [string, string][];
  body: Uint8Array;
  /** The body as text (invalid UTF-8 replaced). */
  text(): string;
  /** The body as JSON; integers beyond ±(2^53 − 1) are BigInts. Throws on invalid JSON. */
  json(): any;
  /** The first header called `name` (case-insensitive). */
  header(name: string): string | undefined;
}

/** No response came back. */
export class HttpError extends Error {
  kind: "denied" | "timeout" | "too-large" | "failed";
  reason: string;
}
/** The grant does not cover the host (stops the pipeline if it escapes). */
export class Denied extends HttpError {
  constructor(reason: string);
}
/** No answer within `http_limits` (retried if it escapes). */
export class Timeout extends HttpError {
  constructor(reason: string);
}
/** The response exceeds `http_limits.max_response_kb` (stops the pipeline if it escapes). */
export class TooLarge extends HttpError {
  constructor(reason: string);
}
/** A malformed request, DNS, connection or TLS failure (retried if it escapes). */
export class Failed extends HttpError {
  constructor(reason: string);
}

/** Sends `request`; throws an `HttpError` when no response came back. */
export function send(request: Request): Response;
/** A `GET` of `url`. */
export function get(url: string, headers?: [string, string][]): Response;
/** A `POST` of `body` to `url`. */
export function post(url: string, body: string | Uint8Array, headers?: [string, string][]): Response;
/** Internal: replaces who answers `send` (the build's entry and `withHttp` use it). */
export function setTransport(fn: (request: Required<Request> & { body: Uint8Array }) => Response): unknown;
/** Internal: the host's `http-error` variant as an `HttpError`. */
export function errorFromVariant(variant: unknown): HttpError;
