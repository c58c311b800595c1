"""The contract's records (``sluice:plugin/types``) as plain dataclasses.

Natively, :mod:`sluice.testing` builds batches from these. Inside the
component the generated ``wit_world.imports.types`` stands in: same names,
same fields, so :func:`sluice.run_batch` runs unchanged on either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class Span:
    """A byte range of ``Batch.data`` (or, for ``Event.headers``, of ``Batch.headers``)."""

    offset: int
    len: int


@dataclass
class Header:
    """One header: name (UTF-8) and value, both spans into ``Batch.data``."""

    name: Span
    value: Span


@dataclass
class Event:
    """One framed event; ``value=None`` is a tombstone."""

    key: Optional[Span]
    value: Optional[Span]
    headers: Span
    timestamp_ms: int
    stream: int
    parent: int


@dataclass
class Batch:
    """A batch in the framed layout."""

    data: bytes
    events: List[Event]
    headers: List[Header]
    streams: List[str] = field(default_factory=list)


@dataclass
class Rejection:
    """An input event the plugin refused, by index, with the reason."""

    index: int
    reason: str


@dataclass
class Output:
    """The result of processing one batch."""

    events: Batch
    rejected: List[Rejection]
