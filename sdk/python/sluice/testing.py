"""Unit-test a transform natively: the same batch loop as the component, no Wasm.

::

    from sluice.testing import run

    out = run(MyTransform, ['{"a":1}', "[1]"], params={"field": "seen"})
    assert out.values() == ['{"a":1,"seen":true}']
    assert out.rejected() == [(1, "expected a JSON object")]

Parameters go through ``MyTransform(params)`` exactly as at deployment, so a
bad parameter raises there (:class:`sluice.ParamError`). :class:`sluice.Retry`
and :class:`sluice.Fatal` propagate out of :func:`run`; so does any other
exception the transform raises (inside the sandbox that crashes the instance).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple, Type, Union

from . import Params, Transform, run_batch
from . import types as _t

__all__ = ["TestEvent", "TestOutput", "batch", "run", "run_batch_native"]

Text = Union[str, bytes]


@dataclass
class TestEvent:
    """An input event for :func:`run` with more than a value."""

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
