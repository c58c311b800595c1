"""User-defined functions (the ``udf`` world): scalar functions that pipelines
register by name (``udfs:`` in YAML, ``CREATE FUNCTION`` in SQL) and that
expressions call like built-ins::

    import sluice

    @sluice.udf
    def mask_email(email):
        \"\"\"'ada@example.com' -> 'a***@example.com'.\"\"\"
        if email is None:
            return None
        ...

Set ``world = "udf"`` under ``[tool.sluice]`` in ``pyproject.toml`` and build
with ``sluice plugin build DIR``. The function receives the arguments as JSON
values (``None``, ``bool``, ``int``, ``float``, ``str``, ``list``, ``dict``) and
returns one. Any exception fails the call: the event whose expression made it
is dead-lettered with the exception's type and message. A UDF has no WASI, no
network and no state; the host bounds its memory, CPU time per call and result
size.

Unit-test it with plain Python: :func:`sluice.udfs.call` runs exactly what the component
runs, bytes in and bytes out.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["udf", "call", "UdfError"]

_MARK = "__sluice_udf__"


class UdfError(Exception):
    """Why one call failed; its message is what the host dead-letters."""


def udf(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Marks ``fn`` as the module's user-defined function (one per plugin)."""
    setattr(fn, _MARK, True)
    return fn


def is_udf(obj: Any) -> bool:
    """True for a function marked with :func:`udf`."""
    return callable(obj) and getattr(obj, _MARK, False) is True


def call(fn: Callable[..., Any], args: bytes) -> bytes:
    """One call as the host makes it: ``args`` is a JSON array, the result is
    one JSON value as UTF-8. Raises :class:`UdfError` naming what failed."""
    import sluice

    try:
        values = sluice.loads(bytes(args))
    except ValueError as e:
        raise UdfError(f"the arguments are not JSON: {e}") from None
    if not isinstance(values, list):
        raise UdfError("the arguments are not a JSON array")
    try:
        result = fn(*values)
    except Exception as e:  # the function's own failure: this call only
        raise UdfError(sluice.describe_exception(e).replace("plugin raised ", "", 1)) from None
    try:
        return sluice.dumps(result)
    except (TypeError, ValueError) as e:
        raise UdfError(f"the result cannot be written as JSON: {e}") from None
