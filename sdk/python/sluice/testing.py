"""Unit-test a transform or a connector natively: the same code paths as the
component, no Wasm runtime.

::

    from sluice.testing import run

    out = run(MyTransform, ['{"a":1}', "[1]"], params={"field": "seen"})
    assert out.values() == ['{"a":1,"seen":true}']
    assert out.rejected() == [(1, "expected a JSON object")]

Parameters go through ``MyTransform(params)`` exactly as at deployment, so a
bad parameter raises there (:class:`sluice.ParamError`). :class:`sluice.Retry`
and :class:`sluice.Fatal` propagate out of :func:`run`; so does any other
exception the transform raises (inside the sandbox that crashes the instance).

Connectors: :class:`SourceHarness` and :class:`SinkHarness` call a
:class:`sluice.Source` or :class:`sluice.Sink` the way the host does (open at a
position, ``poll``/``commit``, ``write``/``flush``), through the same packing
of batches into the contract's tables and the same error mapping as the
component; :func:`with_http` stands in for the host's HTTP, grant check
included::

    with with_http(lambda req: Response(503, body=b"busy"), grant=["hook.test:80"]):
        sink = SinkHarness(Hook, {"url": "http://hook.test/in"})
        with pytest.raises(sluice.Retry):
            sink.write(['{"a":1}'])
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
)

from . import Params, Transform, run_batch
from . import connector as _conn
from . import http as _http
from . import types as _t
from .http import Request, Response

__all__ = [
    "Request",
    "Response",
    "SinkHarness",
    "SourceHarness",
    "TestEvent",
    "TestOutput",
    "batch",
    "run",
    "run_batch_native",
    "with_clock",
    "with_http",
]

Text = Union[str, bytes]


@dataclass
class TestEvent:
    """An input event for :func:`run` with more than a value."""

    __test__ = False  # not a pytest test class

    value: Optional[Text]
    key: Optional[Text] = None
    headers: Sequence[Tuple[str, Text]] = ()
    timestamp_ms: int = 0


def _b(x: Text) -> bytes:
    return x.encode("utf-8") if isinstance(x, str) else bytes(x)


def batch(events: Iterable[Union[Text, None, TestEvent]], stream: str = "test") -> _t.Batch:
    """Builds a framed batch. Each item is a value (``str``/``bytes``; ``None``
    is a tombstone) or a :class:`TestEvent`."""
    data = bytearray()
    raw_events: List[_t.Event] = []
    headers: List[_t.Header] = []

    def span(b: bytes) -> _t.Span:
        start = len(data)
        data.extend(b)
        return _t.Span(start, len(b))

    for i, item in enumerate(events):
        ev = item if isinstance(item, TestEvent) else TestEvent(item)
        key = None if ev.key is None else span(_b(ev.key))
        value = None if ev.value is None else span(_b(ev.value))
        first = len(headers)
        for name, val in ev.headers:
            headers.append(_t.Header(span(_b(name)), span(_b(val))))
        raw_events.append(
            _t.Event(key, value, _t.Span(first, len(headers) - first), ev.timestamp_ms, 0, i)
        )
    return _t.Batch(bytes(data), raw_events, headers, [stream])


class TestOutput:
    """What a transform produced in a test run."""

    __test__ = False  # not a pytest test class

    def __init__(self, raw: _t.Output) -> None:
        #: The raw output batch and rejections, as the host would receive them.
        self.raw = raw

    def _slice(self, span: Optional[_t.Span]) -> Optional[bytes]:
        if span is None:
            return None
        return bytes(self.raw.events.data[span.offset : span.offset + span.len])

    def values(self) -> List[Optional[str]]:
        """Output values as text (``None`` for a tombstone)."""
        return [
            None if (b := self._slice(e.value)) is None else b.decode("utf-8")
            for e in self.raw.events.events
        ]

    def json(self) -> List[Any]:
        """Output values parsed as JSON (``None`` for a tombstone)."""
        return [None if v is None else json.loads(v) for v in self.values()]

    def keys(self) -> List[Optional[bytes]]:
        """Output keys (``None`` where there is none)."""
        return [self._slice(e.key) for e in self.raw.events.events]

    def headers(self) -> List[List[Tuple[str, bytes]]]:
        """Each output event's headers as (name, value) pairs."""
        out = []
        for e in self.raw.events.events:
            hs = self.raw.events.headers[e.headers.offset : e.headers.offset + e.headers.len]
            out.append(
                [(_decode(self._slice(h.name)), self._slice(h.value) or b"") for h in hs]
            )
        return out

    def timestamps(self) -> List[int]:
        """Each output event's timestamp in milliseconds."""
        return [e.timestamp_ms for e in self.raw.events.events]

    def parents(self) -> List[int]:
        """For each output event, the index of the input event it derives from."""
        return [e.parent for e in self.raw.events.events]

    def rejected(self) -> List[Tuple[int, str]]:
        """(input index, reason) of every rejected input event."""
        return [(r.index, r.reason) for r in self.raw.rejected]


def _decode(b: Optional[bytes]) -> str:
    return (b or b"").decode("utf-8", "replace")


def run(
    transform: Type[Transform],
    values: Iterable[Union[Text, None, TestEvent]],
    params: Union[Mapping[str, str], Sequence[Tuple[str, str]]] = (),
) -> TestOutput:
    """Builds ``transform`` from ``params`` and runs it over ``values`` as one batch.

    Each value is JSON text (``None`` is a tombstone) or a :class:`TestEvent`.
    """
    return run_batch_native(transform, batch(values), params)


def run_batch_native(
    transform: Type[Transform],
    raw: _t.Batch,
    params: Union[Mapping[str, str], Sequence[Tuple[str, str]]] = (),
) -> TestOutput:
    """Builds ``transform`` from ``params`` and runs it over a hand-built batch."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    instance = transform(Params(pairs))
    return TestOutput(run_batch(instance, raw, _t))


# --------------------------------------------------------------------------- connectors

ParamsArg = Union[Mapping[str, str], Sequence[Tuple[str, str]]]


def _params(params: ParamsArg) -> Params:
    return Params(list(params.items()) if isinstance(params, Mapping) else list(params))


def _position(position: Union[bytes, str, None]) -> Optional[bytes]:
    return None if position is None else _b(position)


@contextlib.contextmanager
def with_http(
    handler: Callable[[Request], Response], grant: Optional[Sequence[str]] = None
) -> Iterator[None]:
    """Answers :func:`sluice.http.send` with ``handler`` inside the ``with``.

    ``handler`` gets each :class:`Request` and returns a :class:`Response` (or
    raises a :class:`sluice.http.HttpError`, e.g. ``Timeout``). With ``grant``
    (``["host:port", ...]``, as in the pipeline), a request to any other host is
    refused as the host refuses it: :class:`sluice.http.Denied` with the same
    message, and ``handler`` never sees it.
    """

    def answer(request: Request) -> Response:
        if grant is not None:
            _check_grant(request.url, list(grant))
        return handler(request)

    previous = _http._transport
    _http._transport = answer
    try:
        yield
    finally:
        _http._transport = previous


class FixedClock:
    """The clock :func:`with_clock` fixes: ``now_ms`` is what
    :func:`sluice.clock.now_ms` returns until :meth:`advance` moves it."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = int(now_ms)

    def advance(self, ms: int) -> None:
        """Moves the wall and the monotonic clock forward by ``ms``."""
        self.now_ms += int(ms)


@contextlib.contextmanager
def with_clock(now_ms: int) -> Iterator[FixedClock]:
    """Fixes :mod:`sluice.clock` at ``now_ms`` (ms since the Unix epoch)
    inside the ``with``, so time-dependent code is repeatable; the monotonic
    clock reads the same instant in nanoseconds and moves with
    :meth:`FixedClock.advance`::

        with with_clock(1_700_000_000_000) as clock:
            ...
            clock.advance(5_000)
    """
    from . import clock as _clock

    fixed = FixedClock(now_ms)
    previous = (_clock._now_ms, _clock._monotonic_ns)
    _clock._now_ms = lambda: fixed.now_ms
    _clock._monotonic_ns = lambda: max(fixed.now_ms, 0) * 1_000_000
    try:
        yield fixed
    finally:
        _clock._now_ms, _clock._monotonic_ns = previous


def _check_grant(url: str, grant: List[str]) -> None:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if default is None:
        raise _http.Failed(f"URL `{url}` is not http:// or https://")
    host = parts.hostname or ""
    port = parts.port or default
    for entry in grant:
        h, _, p = entry.rpartition(":")
        if h.strip("[]").lower() == host.lower() and p == str(port):
            return
    raise _http.Denied(
        f"{host}:{port} is not in this connector's grant (grants.http: [{', '.join(grant)}]); "
        "add it to the pipeline's `grants.http` if the connector should reach it"
    )


class SourceHarness:
    """Drives a :class:`sluice.Source` natively as the host does.

    ``SourceHarness(MySource, {"url": ...}, position=b"42")`` builds it as at
    deployment (a bad parameter raises here). :meth:`poll` returns the
    :class:`sluice.Poll` after packing its events into the contract's tables and
    reading them back, so what you assert on is what the host would receive.
    """

    def __init__(
        self,
        source: Type[_conn.Source],
        params: ParamsArg = (),
        position: Union[bytes, str, None] = None,
    ) -> None:
        #: The source under test.
        self.source = source(_params(params), _position(position))
        self._caught_up = False

    def poll(self, max_events: int = 1024) -> _conn.Poll:
        """One poll of up to ``max_events``. Raises :class:`sluice.Retry` or
        :class:`sluice.Fatal` as the host would see them, and
        :class:`AssertionError` when the poll breaks the contract (more events
        than asked for, or ``caught_up`` cleared once set)."""
        out = _conn.Poll()
        _conn.call(self.source.poll, max_events, out)
        if len(out) > max_events:
            raise AssertionError(f"poll returned {len(out)} events, more than the {max_events} asked for")
        if self._caught_up and not out.caught_up:
            raise AssertionError("caught_up was cleared after it was set")
        self._caught_up = out.caught_up
        data, events, headers = out.encode()
        _conn.decode_batch(data, events, headers, [])  # the tables must read back
        return out

    def poll_until_done(self, max_events: int = 1024, max_polls: int = 10_000) -> List[_conn.Poll]:
        """Polls until ``done`` (a bounded source); every poll, in order."""
        polls = []
        for _ in range(max_polls):
            polls.append(self.poll(max_events))
            if polls[-1].done:
                return polls
        raise AssertionError(f"not done after {max_polls} polls")

    def commit(self, position: Union[bytes, str]) -> None:
        """Tells the source that a checkpoint holding ``position`` is durable."""
        _conn.call(self.source.commit, _b(position))


class SinkHarness:
    """Drives a :class:`sluice.Sink` natively as the host does: batches are
    packed into the contract's tables and read back before ``write`` sees them."""

    def __init__(
        self,
        sink: Type[_conn.Sink],
        params: ParamsArg = (),
        position: Union[bytes, str, None] = None,
    ) -> None:
        #: The sink under test.
        self.sink = sink(_params(params), _position(position))

    def write(
        self, values: Iterable[Union[Text, None, TestEvent]], stream: str = "test"
    ) -> List[Tuple[int, str]]:
        """Writes one batch of these values (``None`` is a tombstone) or
        :class:`TestEvent` s; returns the refused events as (index, reason).
        Raises :class:`sluice.Retry` or :class:`sluice.Fatal` as the host sees them."""
        items = []
        for item in values:
            ev = item if isinstance(item, TestEvent) else TestEvent(item)
            items.append(
                (
                    None if ev.key is None else _b(ev.key),
                    None if ev.value is None else _b(ev.value),
                    [(_b(n), _b(v)) for n, v in ev.headers],
                    ev.timestamp_ms,
                )
            )
        data, events, headers = _conn.encode_events(items)
        return _conn.write_batch(self.sink, _conn.decode_batch(data, events, headers, [stream]))

    def flush(self) -> bytes:
        """Flushes; returns the position the host would checkpoint."""
        return _conn.flush_position(self.sink)
