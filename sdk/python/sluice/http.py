"""Outbound HTTP for connectors, through the host.

Inside the sandbox every request goes through the contract's
``sluice:plugin/http`` import: the host checks the URL's ``host:port``
against the pipeline's grant (``grants: {http: ["host:port"]}``) before
connecting, does TLS, never follows redirects and bounds every request by
the connector's ``http_limits``. Natively, :func:`sluice.testing.with_http`
answers instead, so tests need no server::

    from sluice import http

    resp = http.post(url, b'[{"a":1}]', headers=[("Content-Type", "application/json")])
    if resp.status >= 500:
        raise sluice.Retry(f"HTTP {resp.status}: {resp.text()}")

A response is whatever status came back (a 4xx or a 5xx is a response, not an
error). No response raises a subclass of :class:`HttpError`:
:class:`Denied` (the grant does not cover the host; the message names the host
and the grant), :class:`Timeout`, :class:`TooLarge` or :class:`Failed`. One
that escapes ``poll``, ``commit``, ``write`` or ``flush`` becomes a retry
(:class:`Timeout`, :class:`Failed`) or stops the pipeline (:class:`Denied`,
:class:`TooLarge`), with the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

__all__ = [
    "Denied",
    "Failed",
    "HttpError",
    "Request",
    "Response",
    "Timeout",
    "TooLarge",
    "get",
    "post",
    "send",
]

Body = Union[bytes, bytearray, str]


@dataclass
class Request:
    """One request. ``url`` is absolute (``http://`` or ``https://``)."""

    method: str
    url: str
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass
class Response:
    """A response, whatever its status."""

    status: int
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def text(self) -> str:
        """The body as text (invalid UTF-8 replaced)."""
        return bytes(self.body).decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as strict JSON (raises :class:`ValueError`)."""
        from . import loads

        return loads(bytes(self.body))

    def header(self, name: str) -> Optional[str]:
        """The first header called ``name`` (case-insensitive), or ``None``."""
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None


class HttpError(Exception):
    """No response came back. ``kind`` is ``denied``, ``timeout``,
    ``too-large`` or ``failed``; ``message`` is the host's explanation."""

    kind = "failed"

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.kind}: {message}")
        self.message = str(message)


class Denied(HttpError):
    """The pipeline's grant does not cover the host; the message names both,
    e.g. ``example.com:443 is not in this connector's grant (grants.http: [...])``."""

    kind = "denied"


class Timeout(HttpError):
    """Connecting, the first byte or the body took longer than ``http_limits``."""

    kind = "timeout"


class TooLarge(HttpError):
    """The response is larger than ``http_limits.max_response_kb``."""

    kind = "too-large"


class Failed(HttpError):
    """A malformed request, or a DNS, connection or TLS failure."""

    kind = "failed"


def _no_transport(request: Request) -> Response:
    raise Denied(
        f"{request.url}: no HTTP in this native test; answer it with sluice.testing.with_http"
    )


# Who answers `send`: the host's import inside the sandbox (set by the build
# glue), a test's handler under `sluice.testing.with_http`, else a refusal.
_transport: Callable[[Request], Response] = _no_transport


def _bytes(body: Body) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def send(request: Request) -> Response:
    """Sends ``request`` and waits for the response (raises :class:`HttpError`)."""
    request.body = _bytes(request.body)
    request.headers = [(str(n), str(v)) for n, v in request.headers]
    return _transport(request)


def get(url: str, headers: Sequence[Tuple[str, str]] = ()) -> Response:
    """A ``GET`` of ``url``."""
    return send(Request("GET", url, list(headers)))


def post(url: str, body: Body, headers: Sequence[Tuple[str, str]] = ()) -> Response:
    """A ``POST`` of ``body`` (bytes or text) to ``url``."""
    return send(Request("POST", url, list(headers), _bytes(body)))
