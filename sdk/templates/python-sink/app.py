"""{{name}}: a Sluice sink connector. It POSTs each batch to `url` as a JSON
array; replace `write` with your system's protocol. A 5xx asks the host to
retry the batch; a 4xx dead-letters the batch's events with the response."""

from typing import List, Optional

import sluice
from sluice import http


class Connector(sluice.Sink):
    def __init__(self, params: sluice.Params, position: Optional[bytes]) -> None:
        params.only("url")  # any other parameter fails the deployment
        self.url = params.required("url")

    def write(self, events: List[sluice.Event], rejected: sluice.Rejections) -> None:
        body = b"[" + b",".join(e.value or b"null" for e in events) + b"]"
        # Only hosts the pipeline grants (`grants: {http: ["host:port"]}`); another
        # raises http.Denied naming the host and the grant, which stops the pipeline.
        resp = http.post(self.url, body, [("Content-Type", "application/json")])
        if resp.status == 429 or resp.status >= 500:
            raise sluice.Retry(f"HTTP {resp.status}")  # the host writes the batch again later
        if resp.status >= 400:
            for event in events:
                rejected.reject(event, f"HTTP {resp.status}: {resp.text()}")

    def flush(self) -> bytes:
        # The writes above are synchronous: nothing is buffered.
        return b""
