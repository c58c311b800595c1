"""webhook-sink-py: a sink connector that POSTs each batch of events to an
HTTP endpoint as a JSON array of their values (tombstones as `null`).

- 2xx: delivered.
- 5xx, 429, a timeout or a connection failure: `sluice.Retry`, so the host
  writes the same batch again after a backoff (the pipeline waits; nothing is
  dropped).
- 4xx: the endpoint refuses something in the batch. Each event is then POSTed
  alone (as a one-element array), and every event the endpoint still refuses
  is dead-lettered with the status and the response text.
- A host outside the pipeline's `grants.http`: `sluice.http.Denied`, naming
  the host and the grant, which stops the pipeline.

Writes are synchronous, so `flush` has nothing to wait for. Delivery is at
least once: a rerun POSTs again what came after the last checkpoint.

Parameters: `url` (required), `header.NAME` (extra request headers, e.g.
`header.Authorization`; the host never logs parameters).
"""

from typing import List, Optional

import sluice
from sluice import http

#: Most characters of a response kept in a dead letter or a retry message.
MAX_TEXT = 300


def array(values: List[Optional[bytes]]) -> bytes:
    """A JSON array of event values; the values already are JSON text."""
    return b"[" + b",".join(b"null" if v is None else v for v in values) + b"]"


def short(resp: http.Response) -> str:
    return resp.text()[:MAX_TEXT]


class WebhookSink(sluice.Sink):
    def __init__(self, params: sluice.Params, position: Optional[bytes]) -> None:
        self.url = params.required("url")
        if not self.url.startswith(("http://", "https://")):
            raise sluice.ParamError(f"`url` must start with http:// or https://: {self.url}")
        self.headers = [("Content-Type", "application/json")]
        for name, value in params.items():
            if name.startswith("header."):
                self.headers.append((name[len("header.") :], value))
            elif name != "url":
                raise sluice.ParamError(
                    f"unknown parameter `{name}`; expected `url` or `header.NAME`"
                )

    def post(self, values: List[Optional[bytes]]) -> Optional[str]:
        """POSTs `values`: `None` when delivered, the refusal (`HTTP 422: ...`)
        for a 4xx; raises `Retry` for what is worth trying again. A timeout or
        connection failure (`http.Timeout`, `http.Failed`) escapes as it is: the
        SDK turns it into a retry, and a refused grant (`http.Denied`) into a stop."""
        resp = http.post(self.url, array(values), self.headers)
        if 200 <= resp.status < 300:
            return None
        if resp.status == 429 or resp.status >= 500:
            raise sluice.Retry(f"HTTP {resp.status}: {short(resp)}")
        return f"HTTP {resp.status}: {short(resp)}"

    def write(self, events: List[sluice.Event], rejected: sluice.Rejections) -> None:
        if not events or self.post([e.value for e in events]) is None:
            return
        # Something in the batch was refused: find out what, one by one.
        for event in events:
            refusal = self.post([event.value])
            if refusal is not None:
                rejected.reject(event, refusal)

    def flush(self) -> bytes:
        return b""  # every write above is synchronous: nothing is buffered
