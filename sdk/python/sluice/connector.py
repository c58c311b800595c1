"""Custom connectors: :class:`Source` and :class:`Sink`, the Python side of the
contract's ``source`` and ``sink`` worlds (``sluice:plugin@0.2.0``).

A source is opened at the position the pipeline resumes from, polled, and told
when a position is durable::

    class Count(sluice.Source):
        def __init__(self, params, position):
            params.only("to")
            self.to = params.int("to", 10)
            self.next = int(position) if position else 0   # bytes, or None afresh

        def poll(self, max_events, out):
            while len(out) < max_events and self.next < self.to:
                out.emit_json({"n": self.next})
                self.next += 1
            out.position = str(self.next)        # handed back to __init__ after a restart
            out.done = self.next == self.to

A sink is opened at the position its last ``flush`` returned, written batch
by batch, and flushed at every checkpoint::

    class Hook(sluice.Sink):
        def __init__(self, params, position):
            self.url = params.required("url")

        def write(self, events, rejected):
            resp = sluice.http.post(self.url, b"[" + b",".join(e.value or b"null" for e in events) + b"]")
            if resp.status >= 500:
                raise sluice.Retry(f"HTTP {resp.status}")   # the host writes the batch again later
            if resp.status >= 400:
                for e in events:
                    rejected.reject(e, f"HTTP {resp.status}: {resp.text()}")   # dead letters

        def flush(self):
            return b""   # nothing buffered: every write above is already durable

:mod:`sluice.testing` drives both natively (``SourceHarness``, ``SinkHarness``,
``with_http``). The batches cross the boundary in the contract's packed tables;
this module converts them (:func:`decode_batch`, :func:`encode_events`).
"""

from __future__ import annotations

import struct
from typing import Any, Callable, List, Optional, Sequence, Tuple, TypeVar, Union

from . import Event, Fatal, Params, Retry, dumps
from . import http as _http
from . import types as _t

__all__ = [
    "Poll",
    "Rejections",
    "Sink",
    "Source",
    "decode_batch",
    "encode_events",
]

Text = Union[bytes, bytearray, str]

# The contract's record layouts (wit/sluice.wit, package comment).
_EVENT = struct.Struct("<IIIIIIqIIII")  # 48 bytes
_HEADER = struct.Struct("<IIII")  # 16 bytes
_HAS_KEY = 1
_HAS_VALUE = 2


def _b(x: Text) -> bytes:
    return x.encode("utf-8") if isinstance(x, str) else bytes(x)


# --------------------------------------------------------------------------- framing


def decode_batch(data: bytes, events: bytes, headers: bytes, streams: Sequence[str]) -> _t.Batch:
    """Unpacks the contract's event and header tables into :mod:`sluice.types`
    records, so :class:`sluice.Event` reads them. Raises :class:`ValueError` on a
    table whose length is not a multiple of its record size."""
    if len(events) % _EVENT.size or len(headers) % _HEADER.size:
        raise ValueError(
            f"malformed batch: event table of {len(events)} bytes, header table of {len(headers)} bytes"
        )
    hs = [
        _t.Header(_t.Span(no, nl), _t.Span(vo, vl))
        for no, nl, vo, vl in _HEADER.iter_unpack(headers)
    ]
    out = []
    for ko, kl, vo, vl, first, n, ts, stream, parent, flags, _ in _EVENT.iter_unpack(events):
        out.append(
            _t.Event(
                _t.Span(ko, kl) if flags & _HAS_KEY else None,
                _t.Span(vo, vl) if flags & _HAS_VALUE else None,
                _t.Span(first, n),
                ts,
                stream,
                parent,
            )
        )
    return _t.Batch(bytes(data), out, hs, list(streams))


def encode_events(
    items: Sequence[Tuple[Optional[bytes], Optional[bytes], Sequence[Tuple[bytes, bytes]], int]],
) -> Tuple[bytes, bytes, bytes]:
    """Packs ``(key, value, headers, timestamp_ms)`` items into the contract's
    ``(data, events, headers)`` buffers; event ``i`` has parent ``i``."""
    data = bytearray()
    events = bytearray()
    headers = bytearray()
    n_headers = 0

    def span(b: Optional[bytes]) -> Tuple[int, int]:
        if b is None:
            return 0, 0
        start = len(data)
        data.extend(b)
        return start, len(b)

    for i, (key, value, hs, ts) in enumerate(items):
        key_span, value_span = span(key), span(value)
        first = n_headers
        for name, val in hs:
            headers += _HEADER.pack(*span(name), *span(val))
            n_headers += 1
        flags = (_HAS_KEY if key is not None else 0) | (_HAS_VALUE if value is not None else 0)
        events += _EVENT.pack(*key_span, *value_span, first, n_headers - first, ts, 0, i, flags, 0)
    return bytes(data), bytes(events), bytes(headers)


# --------------------------------------------------------------------------- source


class Poll:
    """What one :meth:`Source.poll` returns: events, malformed inputs, the
    position after all of them, and the caught-up and done flags.

    ``position`` (bytes; text is stored as UTF-8) is handed back to the source's
    ``__init__`` after a restart; leave it empty when it did not change.
    ``caught_up`` tells the host the backlog is delivered (tables the source
    feeds count as loaded from then on; once set, keep it set). ``done`` ends
    a bounded source: the host stops polling.
    """

    __slots__ = ("_items", "malformed_inputs", "_position", "caught_up", "done")

    def __init__(self) -> None:
        self._items: List[Tuple[Optional[bytes], Optional[bytes], List[Tuple[bytes, bytes]], int]] = []
        #: Inputs reported with :meth:`malformed`: (raw bytes, reason).
        self.malformed_inputs: List[Tuple[bytes, str]] = []
        self._position = b""
        self.caught_up = False
        self.done = False

    @property
    def position(self) -> bytes:
        """The position after this poll (empty: unchanged)."""
        return self._position

    @position.setter
    def position(self, value: Text) -> None:
        self._position = _b(value)

    def emit(
        self,
        value: Optional[Text],
        *,
        key: Optional[Text] = None,
        headers: Sequence[Tuple[str, Text]] = (),
        timestamp_ms: int = 0,
    ) -> None:
        """Adds an event with ``value`` (bytes or text; ``None`` is a tombstone).
        ``timestamp_ms`` 0 lets the host stamp it with the time it was polled."""
        self._items.append(
            (
                None if key is None else _b(key),
                None if value is None else _b(value),
                [(_b(n), _b(v)) for n, v in headers],
                int(timestamp_ms),
            )
        )

    def emit_json(self, value: Any, *, key: Optional[Text] = None, timestamp_ms: int = 0) -> None:
        """Adds an event whose value is ``value`` as JSON (:func:`sluice.dumps`)."""
        self.emit(dumps(value), key=key, timestamp_ms=timestamp_ms)

    def malformed(self, raw: Text, reason: str) -> None:
        """Reports an input that could not become an event: it is
        dead-lettered with ``reason`` and the raw bytes; the source goes on."""
        self.malformed_inputs.append((_b(raw), str(reason)))

    def __len__(self) -> int:
        """Events added so far (malformed inputs not counted)."""
        return len(self._items)

    def values(self) -> List[Optional[str]]:
        """The values added, as text (``None`` for a tombstone); for tests."""
        return [None if v is None else v.decode("utf-8", "replace") for _, v, _, _ in self._items]

    def keys(self) -> List[Optional[bytes]]:
        """The keys added (``None`` where there is none); for tests."""
        return [k for k, _, _, _ in self._items]

    def timestamps(self) -> List[int]:
        """The timestamps added (0: stamped by the host); for tests."""
        return [ts for _, _, _, ts in self._items]

    def encode(self) -> Tuple[bytes, bytes, bytes]:
        """The events as the contract's ``(data, events, headers)`` buffers."""
        return encode_events(self._items)


class Source:
    """A custom source connector.

    Subclass it once per plugin. ``__init__(self, params, position)`` validates
    the parameters (raise :class:`sluice.ParamError`, or anything, to fail the
    deployment) and resumes after ``position``: the bytes of the checkpoint the
    pipeline resumes from, or ``None`` to start afresh. The default accepts
    no parameters.
    """

    def __init__(self, params: Params, position: Optional[bytes]) -> None:
        params.only()

    def poll(self, max_events: int, out: Poll) -> None:
        """Adds up to ``max_events`` events to ``out`` and the position after
        them. Return quickly when nothing is there: the host polls again after
        ``idle_ms``. Raise :class:`sluice.Retry` to be polled again with
        backoff, :class:`sluice.Fatal` to stop the pipeline."""
        raise NotImplementedError(f"{type(self).__name__}.poll")

    def commit(self, position: bytes) -> None:
        """A checkpoint holding ``position`` is durable (every sink has it):
        acknowledge upstream here, never earlier. Default: nothing to do."""


# --------------------------------------------------------------------------- sink


class Rejections:
    """The events of one batch the target refused for good, with its reasons.
    Each becomes one dead letter (kind ``sink``) carrying the reason."""

    __slots__ = ("_n", "items")

    def __init__(self, batch_len: int) -> None:
        self._n = batch_len
        #: (index in the batch, reason), in the order refused.
        self.items: List[Tuple[int, str]] = []

    def reject(self, event: Union[Event, int], reason: str) -> None:
        """Refuses ``event`` (an :class:`sluice.Event` of the batch, or its
        index) with ``reason``. A second refusal of the same event is ignored."""
        index = event.index if isinstance(event, Event) else int(event)
        if not 0 <= index < self._n:
            raise IndexError(f"rejected event index {index} is outside the batch of {self._n}")
        if all(i != index for i, _ in self.items):
            self.items.append((index, str(reason)))

    def __len__(self) -> int:
        return len(self.items)


class Sink:
    """A custom sink connector.

    Subclass it once per plugin. ``__init__(self, params, position)`` validates
    the parameters and restores the state at ``position`` (what :meth:`flush`
    returned for the checkpoint resumed from; ``None``: afresh). Events after
    that checkpoint are written again, so a target that cannot deduplicate gets
    them at least once.
    """

    def __init__(self, params: Params, position: Optional[bytes]) -> None:
        params.only()

    def write(self, events: List[Event], rejected: Rejections) -> None:
        """Writes a batch (it may buffer). Refuse the events the target refuses
        for good with ``rejected.reject(event, reason)``. Raise
        :class:`sluice.Retry` (a 5xx, a timeout) to have the host write the same
        batch again after a backoff, :class:`sluice.Fatal` to stop."""
        raise NotImplementedError(f"{type(self).__name__}.write")

    def flush(self) -> Text:
        """Makes everything written so far durable and returns the position to
        checkpoint (bytes or text; may be empty). The host commits the source
        positions the checkpoint covers only after this returns."""
        raise NotImplementedError(f"{type(self).__name__}.flush")


# --------------------------------------------------------------------------- calls

R = TypeVar("R")


def call(fn: Callable[..., R], *args: Any) -> R:
    """Calls a connector method as the host does: an :class:`sluice.http.HttpError`
    that escapes it becomes :class:`sluice.Retry` (timeout, failed) or
    :class:`sluice.Fatal` (denied, too large), with its message. The glue and
    the native harnesses both go through here."""
    try:
        return fn(*args)
    except (_http.Timeout, _http.Failed) as e:
        raise Retry(str(e)) from e
    except _http.HttpError as e:
        raise Fatal(str(e)) from e


def write_batch(sink: Sink, batch: _t.Batch) -> List[Tuple[int, str]]:
    """Runs ``sink.write`` over a decoded batch; returns (index, reason) pairs."""
    events = [Event(batch, raw, i) for i, raw in enumerate(batch.events)]
    rejected = Rejections(len(events))
    call(sink.write, events, rejected)
    return rejected.items


def flush_position(sink: Sink) -> bytes:
    """Runs ``sink.flush``; returns its position as bytes (``None`` is empty)."""
    position = call(sink.flush)
    return b"" if position is None else _b(position)
