"""{{name}}: a Sluice source connector. It pages through a JSON API
(`url?cursor=C` answering `{"items": [...], "next": "C2"}`), one page per poll;
replace `poll` with your system's protocol. The position is the cursor, so a
restart resumes after the last checkpoint. With `stop_when_caught_up: true` the
read ends at the first empty page (a bounded read)."""

from typing import Optional

import sluice
from sluice import http


class Connector(sluice.Source):
    def __init__(self, params: sluice.Params, position: Optional[bytes]) -> None:
        params.only("url", "stop_when_caught_up")  # any other parameter fails the deployment
        self.url = params.required("url")
        self.stop_when_caught_up = params.bool("stop_when_caught_up", False)
        self.cursor = position.decode() if position else ""
        self.caught_up = False

    def poll(self, max_events: int, out: sluice.Poll) -> None:
        # Only hosts the pipeline grants (`grants: {http: ["host:port"]}`).
        resp = http.get(f"{self.url}?cursor={self.cursor}&limit={max_events}")
        if resp.status != 200:
            raise sluice.Retry(f"HTTP {resp.status}")  # polled again after a backoff
        try:
            page = resp.json()
        except ValueError as e:
            raise sluice.Retry(f"the page is not JSON: {e}")
        for item in page.get("items", []):
            if isinstance(item, dict):
                out.emit_json(item)
            else:
                out.malformed(sluice.dumps(item), "expected a JSON object")  # a dead letter
        if not page.get("items"):
            self.caught_up = True  # the backlog is delivered
            out.done = self.stop_when_caught_up
        out.caught_up = self.caught_up  # once set, it stays set (new items are live ones)
        self.cursor = str(page.get("next", self.cursor))
        out.position = self.cursor
