"""Write a Sluice transform, or a custom connector (:class:`Source`, :class:`Sink`,
:mod:`sluice.http`; see :mod:`sluice.connector`), in Python.

Subclass :class:`Transform`, read each :class:`Event`, write outputs to the
:class:`Emitter`, and raise :class:`Reject` for an event that is bad::

    import sluice

    class DropCurrency(sluice.Transform):
        \"\"\"Drops events whose `currency` is the configured one.\"\"\"

        def __init__(self, params: sluice.Params) -> None:
            params.only("currency")
            self.currency = params.required("currency")

        def process(self, event: sluice.Event, out: sluice.Emitter) -> None:
            value = event.json()           # not JSON -> dead letter with the reason
            if value.get("currency") != self.currency:
                out.forward()              # 0..n outputs per input

Build it with ``sluice plugin build DIR`` (the directory holds ``app.py`` and a
``pyproject.toml`` with a ``[tool.sluice]`` table). Unit-test it with plain
Python: :func:`sluice.testing.run` drives the same batch loop the component
runs, no Wasm runtime needed.

Errors: :class:`Reject` means *this event is bad* (the host dead-letters it with
your reason; whatever you emitted for it is withdrawn). :class:`Retry` asks the
host to retry the whole batch later; :class:`Fatal` stops the stage. Any other
exception is a bug in the plugin: it is logged to the host with its type, message
and line, and the instance crashes; the host then isolates the one event that
caused it and dead-letters it. Nothing is dropped silently.

Logging: use the standard :mod:`logging` module. Inside the sandbox, records of
level INFO and above go to the host, which tags them with stage and plugin.
"""

from __future__ import annotations

import json as _json
import math as _math
from typing import Any, Iterator, Optional, Sequence, Tuple, Union

__all__ = [
    "CONNECTOR_CONTRACT_VERSION",
    "CONTRACT_VERSION",
    "Emitter",
    "Event",
    "Fatal",
    "ParamError",
    "Params",
    "Poll",
    "Reject",
    "Rejections",
    "Retry",
    "Sink",
    "Source",
    "Transform",
    "http",
    "udf",
    "dumps",
    "loads",
    "JsonError",
    "JsonView",
    "ObjectWriter",
    "Raw",
    "RawKey",
]

#: The contract version transforms build against.
CONTRACT_VERSION = "0.1.0"

#: The contract version custom connectors (:class:`Source`, :class:`Sink`) build
#: against: their worlds exist from 0.2.0 on.
CONNECTOR_CONTRACT_VERSION = "0.2.0"


# --------------------------------------------------------------------------- errors


class Reject(Exception):
    """This event is bad: dead-letter it with ``reason``.

    Whatever was emitted for the event before the raise is withdrawn, so a
    half-processed event never leaks out.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = str(reason)


class Retry(Exception):
    """Something outside is temporarily unavailable: retry the batch later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = str(reason)


class Fatal(Exception):
    """The plugin cannot go on: stop the stage."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = str(reason)


class ParamError(ValueError):
    """A stage parameter is missing, unknown or malformed; fails the deployment."""


# --------------------------------------------------------------------------- JSON


def _finite_float(text: str) -> float:
    number = float(text)
    if _math.isinf(number):
        raise ValueError(f"number out of range: {text}")
    return number


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: Union[bytes, str]) -> Any:
    """Parses strict JSON (UTF-8 bytes or text), as the Rust SDK does.

    Unlike :func:`json.loads`, it refuses ``NaN``/``Infinity`` and numbers too
    large for a double (``1e400``), and bytes that are not UTF-8. Raises
    :class:`ValueError` (``json.JSONDecodeError`` or ``UnicodeDecodeError``).
    """
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray, memoryview)) else data
    value = _DECODER.decode(text)
    if "\\u" in text and ("\\ud" in text or "\\uD" in text):
        # A lone surrogate escape ("\ud800") parses in Python but is not valid
        # Unicode, cannot be written as UTF-8, and serde_json refuses it.
        _json.dumps(value, ensure_ascii=False).encode("utf-8")
    return value


def dumps(value: Any) -> bytes:
    """Serializes ``value`` as compact UTF-8 JSON with sorted keys.

    Byte for byte what the Rust SDK's ``Emitter::json`` writes for the same
    value: no spaces; object keys sorted (Python sorts ``str`` by code point,
    which is the same order as sorting their UTF-8 bytes); integers without a
    decimal point; only ``"``, ``\\`` and control characters escaped (non-ASCII
    stays as UTF-8). Two differences remain, both in floats that print with an
    exponent: Python writes ``1e+16`` and ``1e-05`` where serde_json writes
    ``1e16`` and ``0.00001``. Integers keep full precision (serde_json turns
    integers beyond 64 bits into doubles). NaN and infinities raise
    :class:`ValueError`, as JSON has no such numbers.
    """
    return _ENCODER.encode(value).encode("utf-8")


# Built once: `json.loads`/`json.dumps` with options build a new coder per call.
_DECODER = _json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constant)
_ENCODER = _json.JSONEncoder(
    separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False
)


from .view import JsonError, JsonView, ObjectWriter, Raw, RawKey  # noqa: E402

# --------------------------------------------------------------------------- params


class Params:
    """The parameters a stage was configured with, as text (from the pipeline file)."""

    __slots__ = ("_entries",)

    def __init__(self, pairs: Sequence[Tuple[str, str]] = ()) -> None:
        self._entries = [(str(k), str(v)) for k, v in pairs]

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The value of ``name``, or ``default`` when it is not set."""
        for key, value in self._entries:
            if key == name:
                return value
        return default

    def required(self, name: str) -> str:
        """The value of ``name``; raises :class:`ParamError` when it is not set."""
        value = self.get(name)
        if value is None:
            raise ParamError(f"parameter `{name}` is required")
        return value

    def bool(self, name: str, default: bool = False) -> bool:
        """``name`` as ``true``/``false``, or ``default`` when it is not set."""
        value = self.get(name)
        if value is None:
            return default
        if value == "true":
            return True
        if value == "false":
            return False
        raise ParamError(f"parameter `{name}`: expected `true` or `false`, found `{value}`")

    def int(self, name: str, default: Optional[int] = None) -> Optional[int]:
        """``name`` as an integer, or ``default`` when it is not set."""
        value = self.get(name)
        if value is None:
            return default
        try:
            return int(value.strip())
        except ValueError:
            raise ParamError(f"parameter `{name}`: expected an integer, found `{value}`") from None

    def json(self, name: str, default: Any = None) -> Any:
        """``name`` parsed as JSON (lists and maps arrive this way), or ``default``."""
        value = self.get(name)
        if value is None:
            return default
        try:
            return loads(value)
        except ValueError as e:
            raise ParamError(f"parameter `{name}`: expected JSON ({e})") from None

    def only(self, *allowed: str) -> None:
        """Raises :class:`ParamError` when a parameter outside ``allowed`` is set,
        so a typo fails the deployment instead of being ignored."""
        for key, _ in self._entries:
            if key not in allowed:
                names = ", ".join(allowed) if allowed else "none"
                raise ParamError(f"unknown parameter `{key}`; allowed: {names}")

    def items(self) -> Iterator[Tuple[str, str]]:
        """All (name, value) pairs in the order given."""
        return iter(self._entries)

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self._entries)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Params({self._entries!r})"


# --------------------------------------------------------------------------- events


class Event:
    """One input event. Reading it copies only what you ask for."""

    __slots__ = ("_batch", "_raw", "index")

    def __init__(self, batch: Any, raw: Any, index: int) -> None:
        self._batch = batch
        self._raw = raw
        #: The event's index in its input batch.
        self.index = index

    @property
    def key(self) -> Optional[bytes]:
        """The key bytes, or ``None`` when the event has no key."""
        span = self._raw.key
        if span is None:
            return None
        return self._batch.data[span.offset : span.offset + span.len]

    @property
    def value(self) -> Optional[bytes]:
        """The value bytes (UTF-8 JSON in a pipeline); ``None`` is a tombstone."""
        span = self._raw.value
        if span is None:
            return None
        return self._batch.data[span.offset : span.offset + span.len]

    @property
    def is_tombstone(self) -> bool:
        """True when the event is a tombstone (a delete): it has no value."""
        return self._raw.value is None

    def text(self) -> Optional[str]:
        """The value as text; ``None`` for a tombstone. Rejects a value that is not UTF-8."""
        value = self.value
        if value is None:
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Reject(f"value is not UTF-8: {e}") from None

    def json(self) -> Any:
        """The value parsed as JSON (``None`` for a tombstone).

        A value that is not valid JSON raises :class:`Reject` with a reason
        naming the parse error, so by default it is dead-lettered.
        """
        value = self.value
        if value is None:
            return None
        try:
            return loads(value)
        except ValueError as e:
            raise Reject(f"value is not valid JSON: {e}") from None

    def view(self) -> Optional["JsonView"]:
        """The value as a zero-copy :class:`JsonView` (``None`` for a tombstone):
        fields by name or path and the exact text of each value, no tree built.

        A value that is not valid JSON raises :class:`Reject` with the reason.
        """
        value = self.value
        if value is None:
            return None
        try:
            return JsonView.parse(value)
        except JsonError as e:
            raise Reject(f"value is not valid JSON: {e}") from None

    @property
    def timestamp_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        return self._raw.timestamp_ms

    @property
    def stream(self) -> str:
        """Name of the input stream the event arrived on."""
        streams = self._batch.streams
        i = self._raw.stream
        return streams[i] if 0 <= i < len(streams) else ""

    @property
    def headers(self) -> list[Tuple[str, bytes]]:
        """All headers as (name, value) pairs, in order."""
        batch, span = self._batch, self._raw.headers
        data, out = batch.data, []
        for h in batch.headers[span.offset : span.offset + span.len]:
            name = data[h.name.offset : h.name.offset + h.name.len].decode("utf-8", "replace")
            out.append((name, data[h.value.offset : h.value.offset + h.value.len]))
        return out

    def header(self, name: str) -> Optional[bytes]:
        """The first header called ``name``, or ``None``."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        return f"Event(index={self.index}, key={self.key!r}, value={self.value!r})"


class _Same:
    """Marks an `Emitter.emit` argument that is copied from the input event."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SAME"


_SAME: Any = _Same()


class Emitter:
    """Where a transform writes its outputs: zero or more events per input event.

    Every output derives from the input event being processed: it carries that
    event's key, headers and timestamp unless you give others, and the host
    copies the input's origin metadata to it.
    """

    __slots__ = ("_types", "_data", "_events", "_headers", "_input", "_parent")

    def __init__(self, types: Any) -> None:
        self._types = types
        self._data = bytearray()
        self._events: list[Any] = []
        self._headers: list[Any] = []
        self._input: Any = None
        self._parent = 0

    def forward(self) -> None:
        """Emits the input event unchanged."""
        self._push(self._input.value, _SAME, _SAME, _SAME)

    def emit_json(self, value: Any) -> None:
        """Emits ``value`` serialized as JSON (see :func:`dumps`), with the input's
        key, headers and timestamp."""
        self._push(dumps(value), _SAME, _SAME, _SAME)

    def emit(
        self,
        value: Union[bytes, bytearray, str, None],
        *,
        key: Union[bytes, str, None] = _SAME,
        headers: Sequence[Tuple[str, Union[bytes, str]]] = _SAME,
        timestamp_ms: int = _SAME,
    ) -> None:
        """Emits ``value`` (bytes or text; ``None`` is a tombstone).

        ``key``, ``headers`` and ``timestamp_ms`` default to the input event's;
        pass ``key=None`` or ``headers=[]`` to drop them.
        """
        self._push(value, key, headers, timestamp_ms)

    def tombstone(self) -> None:
        """Emits a tombstone (a delete) with the input's key, headers and timestamp."""
        self._push(None, _SAME, _SAME, _SAME)

    # -- internals ------------------------------------------------------------

    def _bytes(self, b: Union[bytes, bytearray, str]) -> Any:
        if isinstance(b, str):
            b = b.encode("utf-8")
        data = self._data
        start = len(data)
        data += b
        return self._types.Span(start, len(b))

    def _push(self, value: Any, key: Any, headers: Any, timestamp_ms: Any) -> None:
        t, inp = self._types, self._input
        if key is _SAME:
            key = inp.key
        key_span = None if key is None else self._bytes(key)
        value_span = None if value is None else self._bytes(value)
        first = len(self._headers)
        if headers is _SAME:
            headers = inp.headers if inp._raw.headers.len else ()
        for name, val in headers:
            self._headers.append(t.Header(self._bytes(name), self._bytes(val)))
        if timestamp_ms is _SAME:
            timestamp_ms = inp._raw.timestamp_ms
        self._events.append(
            t.Event(
                key_span,
                value_span,
                t.Span(first, len(self._headers) - first),
                int(timestamp_ms),
                0,
                self._parent,
            )
        )


# --------------------------------------------------------------------------- transform


class Transform:
    """A stateless transform: called once per input event, emits 0..n events.

    Subclass it once per plugin and override :meth:`process`. Override
    ``__init__(self, params)`` to read parameters; raise :class:`ParamError`
    (or any exception) there to fail the deployment with that message. The
    default accepts no parameters at all, so a misspelt one is an error.
    """

    def __init__(self, params: Params) -> None:
        params.only()

    def process(self, event: Event, out: Emitter) -> None:
        """Processes one event, emitting any number of outputs to ``out``."""
        raise NotImplementedError(f"{type(self).__name__}.process")


def run_batch(transform: Transform, batch: Any, types: Any) -> Any:
    """Runs ``transform`` over one framed batch and returns the output.

    This is the whole batch loop: the Wasm export glue and
    :mod:`sluice.testing` both call it, so what you test natively is what runs
    in the sandbox. ``types`` provides ``Span``, ``Header``, ``Event``,
    ``Batch``, ``Rejection`` and ``Output`` (the contract's records).
    :class:`Retry` and :class:`Fatal` propagate to the caller.
    """
    out = Emitter(types)
    rejected = []
    process = transform.process
    data, events, headers = out._data, out._events, out._headers
    for index, raw in enumerate(batch.events):
        event = Event(batch, raw, index)
        out._input = event
        out._parent = index
        mark = (len(data), len(events), len(headers))
        try:
            process(event, out)
        except Reject as e:
            # Withdraw whatever was emitted for the rejected event.
            del data[mark[0] :]
            del events[mark[1] :]
            del headers[mark[2] :]
            rejected.append(types.Rejection(index, e.reason))
    return types.Output(types.Batch(bytes(data), events, headers, []), rejected)


def describe_exception(e: BaseException) -> str:
    """``"plugin raised KeyError: 'price' (app.py line 12)"``: what the host logs
    when a plugin raises something other than Reject/Retry/Fatal."""
    where = ""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        code = tb.tb_frame.f_code
        where = f" ({code.co_filename.rsplit('/', 1)[-1]} line {tb.tb_lineno}, in {code.co_name})"
    return f"plugin raised {type(e).__name__}: {e}{where}"



# Custom connectors (the `source` and `sink` worlds); imported last, as they
# build on the classes above.
from . import clock, http  # noqa: E402
from .connector import Poll, Rejections, Sink, Source  # noqa: E402

# User-defined functions (the `udf` world).
from .udfs import udf  # noqa: E402
