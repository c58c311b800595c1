// {{name}}: a Sluice sink connector. It POSTs each batch to `url` as a JSON
// array; replace `write` with your system's protocol. A 5xx asks the host to
// retry the batch; a 4xx dead-letters the batch's events with the response.

import { http, Retry, Sink } from "@sluice/plugin";

export class Connector extends Sink {
  constructor(params, position) {
    super(params, position);
    params.only(["url"]); // any other parameter fails the deployment
    this.url = params.required("url");
  }

  write(events, rejected) {
    // Values are already JSON text: join them as they are, so nothing is re-encoded.
    const body = `[${events.map((e) => (e.isTombstone ? "null" : e.text())).join(",")}]`;
    // Only hosts the pipeline grants (`grants: {http: ["host:port"]}`); another
    // throws http.Denied naming the host and the grant, which stops the pipeline.
    const resp = http.post(this.url, body, [["Content-Type", "application/json"]]);
    if (resp.status === 429 || resp.status >= 500) throw new Retry(`HTTP ${resp.status}`); // written again later
    if (resp.status >= 400) {
      for (const event of events) rejected.reject(event, `HTTP ${resp.status}: ${resp.text()}`);
    }
  }

  flush() {
    return ""; // the writes above are synchronous: nothing is buffered
  }
}
