"""Zero-copy JSON: read fields of an event value without building a tree, and
build output objects by splicing the input's bytes.

:meth:`JsonView.parse` checks the whole value once and remembers where each
top-level field's key and value lie; reading a field is a lookup in that
table, and a :class:`Raw` is the exact text of one value, read on demand
(:meth:`Raw.as_str`, :meth:`Raw.as_int`, ...). :class:`ObjectWriter` writes an
object from raw slices and new values, so whatever the plugin does not change
is copied byte for byte (``1.50`` stays ``1.50``)::

    view = event.view()                      # Reject when not JSON
    if view.get("currency").as_str() == "aud":
        return
    w = sluice.ObjectWriter()
    w.copy_from(view, drop=("price",), rename={"ts": "time"})
    w.value("price_cents", round(view.get("price").as_float() * 100))
    out.emit(w.finish())

The semantics are the Rust SDK's (``sluice_sdk::json``): RFC 8259 JSON, every
string checked as UTF-8, nesting capped at :data:`MAX_DEPTH` so hostile input
fails with a reason instead of exhausting the stack, and duplicate keys
resolved to the *last* occurrence on lookup.

Speed: a loop over bytes in Python costs a bytecode dispatch per byte, far
more than CPython's C JSON parser spends on the whole value. So :meth:`parse`
first indexes the top-level fields with the C functions behind :mod:`json`
(``scanstring`` for keys, ``scan_once`` per value, which checks each value
completely), and falls back to the validating scanner below (regular
expressions, one C call per token) whenever that path cannot decide: an error
(to report the reason and byte offset), deep nesting (the 128 cap), a
surrogate escape, or an integer too long for ``int()``.
"""

from __future__ import annotations

import json as _json
import re as _re
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

__all__ = ["MAX_DEPTH", "JsonError", "JsonView", "ObjectWriter", "Raw", "RawKey"]

#: Deepest nesting of arrays and objects accepted (serde_json's limit).
MAX_DEPTH = 128

_WS = _re.compile(rb"[ \t\n\r]*")
# Plain runs exclude only `"`, `\` and controls; UTF-8 is checked separately.
_STRING = _re.compile(rb'"(?:[^"\\\x00-\x1f]+|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"')
_NUMBER = _re.compile(rb"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INTEGER = _re.compile(rb"-?(?:0|[1-9][0-9]*)")
_DIGITS = _re.compile(rb"[0-9]+")


class JsonError(ValueError):
    """Why a value is not JSON: ``reason`` and the byte ``offset`` where."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} at byte {offset}")
        self.reason = reason
        self.offset = offset


def _string_error(b: bytes, p: int) -> JsonError:
    """Says why the string at ``p`` does not match :data:`_STRING`."""
    q = p + 1
    n = len(b)
    while q < n:
        c = b[q]
        if c == 0x22:
            break
        if c == 0x5C:
            e = b[q + 1 : q + 2]
            if not e:
                break
            if e in b'"\\/bfnrt':
                q += 2
                continue
            if e == b"u":
                hexd = b[q + 2 : q + 6]
                if len(hexd) < 4:
                    return JsonError("EOF while parsing a string", n)
                if not all(ch in b"0123456789abcdefABCDEF" for ch in hexd):
                    return JsonError("invalid escape", q + 2)
                q += 6
                continue
            return JsonError("invalid escape", q + 1)
        if c < 0x20:
            return JsonError("control character in string", q)
        q += 1
    return JsonError("EOF while parsing a string", n)


def _check_escapes(token: bytes, p: int) -> None:
    """Refuses lone surrogate escapes (``\\ud800``), as serde_json does."""
    try:
        _json.loads(token).encode("utf-8")
    except UnicodeEncodeError:
        raise JsonError("lone surrogate in hex escape", p) from None


class _Scanner:
    __slots__ = ("b", "p")

    def __init__(self, b: bytes) -> None:
        self.b = b
        self.p = 0

    def ws(self) -> None:
        self.p = _WS.match(self.b, self.p).end()  # type: ignore[union-attr]

    def err(self, reason: str) -> JsonError:
        return JsonError(reason, self.p)

    def string(self) -> bool:
        """Scans a string at ``"``; returns whether it has an escape."""
        b, p = self.b, self.p
        m = _STRING.match(b, p)
        if m is None:
            raise _string_error(b, p)
        end = m.end()
        escaped = b.find(b"\\", p, end) >= 0
        if escaped and b.find(b"\\u", p, end) >= 0:
            _check_escapes(b[p:end], p)
        self.p = end
        return escaped

    def value(self, depth: int) -> None:
        b, p = self.b, self.p
        if p >= len(b):
            raise self.err("EOF while parsing a value")
        c = b[p]
        if c == 0x7B:
            self.object(depth + 1, None)
        elif c == 0x5B:
            self.array(depth + 1)
        elif c == 0x22:
            self.string()
        elif c == 0x74:
            self.literal(b"true")
        elif c == 0x66:
            self.literal(b"false")
        elif c == 0x6E:
            self.literal(b"null")
        elif c == 0x2D or 0x30 <= c <= 0x39:
            m = _NUMBER.match(b, p)
            if m is None:
                self.p = p + 1
                raise self.err("invalid number")
            self.p = m.end()
            # "1." and "1e" match only their integer part: report the bad tail.
            nxt = b[self.p : self.p + 1]
            if nxt in (b".", b"e", b"E"):
                self.p += 1
                raise self.err("invalid number")
        else:
            raise self.err("expected a value")

    def literal(self, word: bytes) -> None:
        if not self.b.startswith(word, self.p):
            raise self.err("expected a value")
        self.p += len(word)

    def array(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.err("recursion limit exceeded")
        b = self.b
        self.p += 1
        self.ws()
        if b[self.p : self.p + 1] == b"]":
            self.p += 1
            return
        while True:
            self.ws()
            self.value(depth)
            self.ws()
            c = b[self.p : self.p + 1]
            if c == b",":
                self.p += 1
            elif c == b"]":
                self.p += 1
                return
            elif not c:
                raise self.err("EOF while parsing a list")
            else:
                raise self.err("expected `,` or `]`")

    def object(self, depth: int, record: Optional[List[Tuple[int, int, int, int, bool]]]) -> None:
        if depth > MAX_DEPTH:
            raise self.err("recursion limit exceeded")
        b = self.b
        self.p += 1
        self.ws()
        if b[self.p : self.p + 1] == b"}":
            self.p += 1
            return
        while True:
            self.ws()
            c = b[self.p : self.p + 1]
            if not c:
                raise self.err("EOF while parsing an object")
            if c != b'"':
                raise self.err("key must be a string")
            key_start = self.p + 1
            escaped = self.string()
            key_end = self.p - 1
            self.ws()
            c = b[self.p : self.p + 1]
            if not c:
                raise self.err("EOF while parsing an object")
            if c != b":":
                raise self.err("expected `:`")
            self.p += 1
            self.ws()
            value_start = self.p
            self.value(depth)
            if record is not None:
                record.append((key_start, key_end, value_start, self.p, escaped))
            self.ws()
            c = b[self.p : self.p + 1]
            if c == b",":
                self.p += 1
            elif c == b"}":
                self.p += 1
                return
            elif not c:
                raise self.err("EOF while parsing an object")
            else:
                raise self.err("expected `,` or `}`")


def _check_utf8(b: bytes) -> None:
    if b.isascii():
        return
    try:
        b.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JsonError("invalid UTF-8", e.start) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Plain floats: `1e400` is valid JSON (kept as text here), unlike in `loads`.
_FAST_SCAN = _json.scanner.make_scanner(_json.JSONDecoder(parse_constant=_refuse_constant))
_S = r'"(?:[^"\\\x00-\x1f]+|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"'
# One top-level field: key, colon, then a scalar value, or the opening of a
# container (checked by the C scanner).
_FIELD = _re.compile(
    r"[ \t\n\r]*(" + _S + r")[ \t\n\r]*:[ \t\n\r]*(?:(" + _S
    + r"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)|[\[{])"
)
_NEXT = _re.compile(r"[ \t\n\r]*([,}])")
_OPEN = _re.compile(r"[ \t\n\r]*(\{)?[ \t\n\r]*(\})?")
_WS_STR = _re.compile(r"[ \t\n\r]*")


def _fast_index(b: bytes, record: List[Tuple[int, int, int, int, bool]]) -> bool:
    """Indexes ``b`` with C-implemented calls only (regular expressions and
    the scanner behind :mod:`json`); False when it cannot decide (then the
    validating scanner runs and gives the reason)."""
    ascii_only = b.isascii()
    try:
        text = b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if text.count("{") + text.count("[") > MAX_DEPTH or "\\ud" in text or "\\uD" in text:
        return False
    n = len(text)
    found: List[Tuple[int, int, int, int, bool]] = []
    try:
        m = _OPEN.match(text)
        if m.group(1) is None:  # type: ignore[union-attr]
            p = _FAST_SCAN(text, m.end())[1]  # type: ignore[union-attr]
        elif m.group(2) is not None:  # type: ignore[union-attr]
            p = m.end()  # type: ignore[union-attr]
        else:
            p = m.end()  # type: ignore[union-attr]
            field, nxt, scan = _FIELD.match, _NEXT.match, _FAST_SCAN
            while True:
                f = field(text, p)
                if f is None:
                    return False
                ks, ke = f.span(1)
                vs, ve = f.span(2)
                if vs < 0:
                    vs = f.end() - 1
                    ve = scan(text, vs)[1]
                found.append((ks + 1, ke - 1, vs, ve, text.find("\\", ks, ke) >= 0))
                g = nxt(text, ve)
                if g is None:
                    return False
                p = g.end()
                if text[p - 1] == "}":
                    break
        if _WS_STR.match(text, p).end() != n:  # type: ignore[union-attr]
            return False
    except (ValueError, StopIteration, IndexError, RecursionError):
        return False
    if not ascii_only:
        # String indices to byte offsets, encoding only the text between them.
        at_char = at_byte = 0

        def to_byte(i: int) -> int:
            nonlocal at_char, at_byte
            at_byte += len(text[at_char:i].encode("utf-8"))
            at_char = i
            return at_byte

        found = [(to_byte(a), to_byte(c), to_byte(d), to_byte(e), esc) for a, c, d, e, esc in found]
    record.extend(found)
    return True


def _scan_root(b: bytes, record: List[Tuple[int, int, int, int, bool]]) -> None:
    if _fast_index(b, record):
        return
    _check_utf8(b)
    s = _Scanner(b)
    s.ws()
    if b[s.p : s.p + 1] == b"{":
        s.object(1, record)
    else:
        s.value(0)
    s.ws()
    if s.p != len(b):
        raise s.err("trailing characters")


# Skipping over text already checked: one regex call per token.
_SKIP_TOKEN = _re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]]|[^,:{}\[\]\s"]+|[,:\s]+', _re.S)


def _skip(b: bytes, p: int) -> int:
    """End of the checked value starting at ``p``."""
    c = b[p]
    if c != 0x7B and c != 0x5B:
        return _SKIP_TOKEN.match(b, p).end()  # type: ignore[union-attr]
    depth = 0
    while True:
        m = _SKIP_TOKEN.match(b, p)
        if m is None:
            return len(b)
        t = b[p]
        p = m.end()
        if t == 0x7B or t == 0x5B:
            depth += 1
        elif t == 0x7D or t == 0x5D:
            depth -= 1
            if depth == 0:
                return p


def _unescape(token: bytes) -> str:
    return _json.loads(token)  # type: ignore[no-any-return]


class RawKey:
    """An object key as written in the input."""

    __slots__ = ("_b", "_start", "_end", "escaped")

    def __init__(self, b: bytes, start: int, end: int, escaped: bool) -> None:
        self._b, self._start, self._end = b, start, end
        #: Whether the key contains a backslash escape.
        self.escaped = escaped

    @property
    def escaped_bytes(self) -> bytes:
        """The UTF-8 text between the quotes, still escaped."""
        return self._b[self._start : self._end]

    @property
    def text(self) -> str:
        """The key, unescaped."""
        if self.escaped:
            return _unescape(self._b[self._start - 1 : self._end + 1])
        return self._b[self._start : self._end].decode("utf-8")

    def is_(self, name: str) -> bool:
        """Whether the key is ``name``."""
        if self.escaped:
            return self.text == name
        n = name.encode("utf-8")
        return self._end - self._start == len(n) and self._b.startswith(n, self._start)

    def __repr__(self) -> str:
        return f"RawKey({self.text!r})"


class Raw:
    """The exact text of one checked JSON value; everything is read on demand."""

    __slots__ = ("_b", "_start", "_end")

    def __init__(self, b: bytes, start: int, end: int) -> None:
        self._b, self._start, self._end = b, start, end

    @property
    def bytes(self) -> bytes:
        """The value's JSON text as UTF-8 bytes, exactly as written."""
        return self._b[self._start : self._end]

    @property
    def text(self) -> str:
        """The value's JSON text, exactly as written (``9007199254740993``, ``"a\\"b"``)."""
        return self.bytes.decode("utf-8")

    @property
    def kind(self) -> str:
        """``object``, ``array``, ``string``, ``number``, ``bool`` or ``null``."""
        c = self._b[self._start]
        if c == 0x7B:
            return "object"
        if c == 0x5B:
            return "array"
        if c == 0x22:
            return "string"
        if c == 0x74 or c == 0x66:
            return "bool"
        if c == 0x6E:
            return "null"
        return "number"

    def is_null(self) -> bool:
        return self._b[self._start] == 0x6E

    def as_bool(self) -> Optional[bool]:
        c = self._b[self._start]
        return True if c == 0x74 else False if c == 0x66 else None

    def as_str(self) -> Optional[str]:
        """The string unescaped, or ``None`` for other types."""
        b, s, e = self._b, self._start, self._end
        if b[s] != 0x22:
            return None
        if b.find(b"\\", s, e) < 0:
            return b[s + 1 : e - 1].decode("utf-8")
        return _unescape(b[s:e])

    def as_int(self) -> Optional[int]:
        """An integer number (no fraction or exponent), exactly; else ``None``."""
        m = _INTEGER.fullmatch(self._b, self._start, self._end)
        return int(m.group()) if m else None

    def as_float(self) -> Optional[float]:
        """The number as a float (``inf`` beyond the double range); ``None`` for other types."""
        return float(self.bytes) if self.kind == "number" else None

    def to_json(self) -> Any:
        """The value as a tree (``sluice.loads``)."""
        from . import loads

        return loads(self.bytes)

    def entries(self) -> Iterator[Tuple[RawKey, "Raw"]]:
        """An object's members in input order (none for other types)."""
        b, end = self._b, self._end
        if b[self._start] != 0x7B:
            return
        p = self._start + 1
        ws = _WS
        while True:
            p = ws.match(b, p, end).end()  # type: ignore[union-attr]
            c = b[p]
            if c == 0x7D:
                return
            if c == 0x2C:
                p = ws.match(b, p + 1, end).end()  # type: ignore[union-attr]
            key_end = _SKIP_TOKEN.match(b, p).end()  # type: ignore[union-attr]
            key = RawKey(b, p + 1, key_end - 1, b.find(b"\\", p, key_end) >= 0)
            p = ws.match(b, key_end, end).end()  # type: ignore[union-attr]
            p = ws.match(b, p + 1, end).end()  # type: ignore[union-attr]  # the colon
            v_end = _skip(b, p)
            yield key, Raw(b, p, v_end)
            p = v_end

    def items(self) -> Iterator["Raw"]:
        """An array's items in order (none for other types)."""
        b, end = self._b, self._end
        if b[self._start] != 0x5B:
            return
        p = self._start + 1
        ws = _WS
        while True:
            p = ws.match(b, p, end).end()  # type: ignore[union-attr]
            if b[p] == 0x2C:
                p = ws.match(b, p + 1, end).end()  # type: ignore[union-attr]
            if b[p] == 0x5D:
                return
            v_end = _skip(b, p)
            yield Raw(b, p, v_end)
            p = v_end

    def get(self, name: str) -> Optional["Raw"]:
        """Member ``name`` of an object (its last occurrence)."""
        found = None
        for key, value in self.entries():
            if key.is_(name):
                found = value
        return found

    def member(self, name: Union[str, int]) -> Optional["Raw"]:
        """Member ``name`` of an object, or item ``name`` (all digits) of an array."""
        kind = self.kind
        if kind == "object":
            return self.get(str(name))
        if kind == "array":
            s = str(name)
            if not s.isdigit() or not s.isascii():
                return None
            index = int(s)
            for i, item in enumerate(self.items()):
                if i == index:
                    return item
        return None

    def path(self, path: Union[str, Sequence[Union[str, int]]]) -> Optional["Raw"]:
        """The value at ``"a.b.0"`` or ``["a", "b", 0]`` below this one."""
        at: Optional[Raw] = self
        for name in _split(path):
            assert at is not None
            at = at.member(name)
            if at is None:
                return None
        return at

    def __repr__(self) -> str:
        return f"Raw({self.text})"


def _split(path: Union[str, Sequence[Union[str, int]]]) -> List[str]:
    if isinstance(path, str):
        return path.split(".")
    return [str(p) for p in path]


class JsonView:
    """A checked JSON value with its top-level fields indexed.

    :meth:`parse` raises :class:`JsonError` (a ``ValueError``) when the bytes
    are not one JSON value.
    """

    __slots__ = ("_b", "_fields", "_index")

    def __init__(self, b: bytes, fields: List[Tuple[int, int, int, int, bool]]) -> None:
        self._b = b
        self._fields = fields
        self._index: Optional[Dict[str, int]] = None

    @classmethod
    def parse(cls, value: Union[bytes, bytearray, memoryview, str]) -> "JsonView":
        if isinstance(value, str):
            b = value.encode("utf-8")
        else:
            b = bytes(value)
        fields: List[Tuple[int, int, int, int, bool]] = []
        _scan_root(b, fields)
        return cls(b, fields)

    @property
    def root(self) -> Raw:
        b = self._b
        start = _WS.match(b).end()  # type: ignore[union-attr]
        return Raw(b, start, len(b.rstrip(b" \t\n\r")))

    def is_object(self) -> bool:
        return self.root.kind == "object"

    def __len__(self) -> int:
        """Top-level fields, duplicates counted."""
        return len(self._fields)

    def find(self, name: str) -> int:
        """Index of the last top-level field named ``name``, or -1."""
        index = self._index
        if index is None:
            # Built on the first lookup; later entries overwrite earlier ones,
            # so a duplicated key maps to its last occurrence.
            index = {}
            for i in range(len(self._fields)):
                index[self.key(i).text] = i
            self._index = index
        return index.get(name, -1)

    def get(self, name: str) -> Optional[Raw]:
        """Top-level field ``name`` (its last occurrence), or ``None``."""
        i = self.find(name)
        return None if i < 0 else self.value(i)

    def __getitem__(self, name: str) -> Raw:
        raw = self.get(name)
        if raw is None:
            raise KeyError(name)
        return raw

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) >= 0

    def path(self, path: Union[str, Sequence[Union[str, int]]]) -> Optional[Raw]:
        """The value at ``"a.b.c"`` (all-digit names index arrays) or a list of names."""
        names = _split(path)
        if not names:
            return self.root
        first = self.get(names[0]) if self.is_object() else self.root.member(names[0])
        return None if first is None else first.path(names[1:])

    def key(self, i: int) -> RawKey:
        ks, ke, _, _, esc = self._fields[i]
        return RawKey(self._b, ks, ke, esc)

    def value(self, i: int) -> Raw:
        _, _, vs, ve, _ = self._fields[i]
        return Raw(self._b, vs, ve)

    def fields(self) -> Iterator[Tuple[RawKey, Raw]]:
        """Every top-level field in input order, duplicates included."""
        for i in range(len(self._fields)):
            yield self.key(i), self.value(i)


class ObjectWriter:
    """Writes one JSON object: raw slices copied as they are, new values
    serialized (:func:`sluice.dumps`). It does not check for duplicate keys;
    the caller decides what goes in once. Keys are written in call order."""

    __slots__ = ("_buf", "_empty")

    def __init__(self, buf: Optional[bytearray] = None) -> None:
        self._buf = bytearray() if buf is None else buf
        self._buf += b"{"
        self._empty = True

    def _key(self, name: str) -> None:
        if not self._empty:
            self._buf += b","
        self._empty = False
        self._buf += _json.dumps(name, ensure_ascii=False).encode("utf-8")
        self._buf += b":"

    def raw_field(self, key: RawKey, value: Raw) -> "ObjectWriter":
        """Copies an input field: its key as written and its raw value."""
        buf = self._buf
        if not self._empty:
            buf += b","
        self._empty = False
        buf += key._b[key._start - 1 : key._end + 1]
        buf += b":"
        buf += value._b[value._start : value._end]
        return self

    def raw(self, name: str, value: Union[Raw, bytes, str]) -> "ObjectWriter":
        """``name`` with a raw value (a :class:`Raw`, or JSON text you vouch for)."""
        self._key(name)
        if isinstance(value, Raw):
            self._buf += value._b[value._start : value._end]
        elif isinstance(value, str):
            self._buf += value.encode("utf-8")
        else:
            self._buf += value
        return self

    def value(self, name: str, value: Any) -> "ObjectWriter":
        """``name`` with ``value`` serialized by :func:`sluice.dumps`."""
        from . import dumps

        self._key(name)
        self._buf += dumps(value)
        return self

    def object(self, name: str) -> "ObjectWriter":
        """Starts an object as the value of ``name``; ``finish()`` it before writing on."""
        self._key(name)
        return ObjectWriter(self._buf)

    def copy_from(
        self,
        view: JsonView,
        drop: Iterable[str] = (),
        rename: Optional[Dict[str, str]] = None,
    ) -> "ObjectWriter":
        """Copies ``view``'s top-level fields in input order (the last occurrence
        of a duplicate), except those in ``drop``, renaming by ``rename``."""
        skip = set(drop)
        rename = rename or {}
        seen = set()
        keep = []
        for i in range(len(view) - 1, -1, -1):
            key = view.key(i)
            name = key.text
            if name in seen:
                continue
            seen.add(name)
            if name not in skip:
                keep.append((i, key, name))
        for i, key, name in reversed(keep):
            if name in rename:
                self.raw(rename[name], view.value(i))
            else:
                self.raw_field(key, view.value(i))
        return self

    def finish(self) -> bytes:
        """Closes the object; returns everything written to the buffer so far."""
        self._buf += b"}"
        return bytes(self._buf)
