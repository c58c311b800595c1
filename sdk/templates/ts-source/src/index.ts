// {{name}}: a Sluice source connector. It pages through a JSON API
// (`url?cursor=C&limit=N` answering `{"items": [...], "next": "C2"}`), one page
// per poll; replace `poll` with your system's protocol. The position is the
// cursor, so a restart resumes after the last checkpoint. With
// `stop_when_caught_up: true` the read ends at the first empty page (a
// bounded read).

import { canonicalJson, http, positionText, Retry, Source, type Params, type Poll } from "@sluice/plugin";

interface Page {
  items?: unknown[];
  next?: string | number;
}

export class Connector extends Source {
  url: string;
  stopWhenCaughtUp: boolean;
  cursor: string;

  constructor(params: Params, position: Uint8Array | undefined) {
    super(params, position);
    params.only(["url", "stop_when_caught_up"]); // any other parameter fails the deployment
    this.url = params.required("url");
    this.stopWhenCaughtUp = params.bool("stop_when_caught_up", false);
    this.cursor = positionText(position) ?? ""; // undefined: a fresh start
  }

  poll(maxEvents: number, out: Poll): void {
    // Only hosts the pipeline grants (`grants: {http: ["host:port"]}`).
    const resp = http.get(`${this.url}?cursor=${encodeURIComponent(this.cursor)}&limit=${maxEvents}`);
    if (resp.status !== 200) throw new Retry(`HTTP ${resp.status}`); // polled again after a backoff
    let page: Page;
    try {
      page = resp.json() as Page; // integers beyond 2^53 come back as BigInts: nothing is rounded
    } catch (e) {
      throw new Retry(`the page is not JSON: ${(e as Error).message}`);
    }
    const items = Array.isArray(page?.items) ? page.items : [];
    for (const item of items) {
      if (item !== null && typeof item === "object" && !Array.isArray(item)) out.emitJson(item);
      else out.malformed(canonicalJson(item), "expected a JSON object"); // a dead letter
    }
    if (items.length === 0) {
      out.caughtUp = true; // the backlog is delivered
      out.done = this.stopWhenCaughtUp;
    }
    this.cursor = String(page?.next ?? this.cursor);
    out.position = this.cursor;
  }
}
