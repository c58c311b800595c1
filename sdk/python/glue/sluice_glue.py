"""Build glue shared by every world: logging to the host and finding the
plugin's class. Plugin authors never import it."""

import importlib
import inspect
import logging
import time as _time

import sluice_build_info as _info
from wit_world.imports import log as _log

_LEVELS = (
    (logging.ERROR, _log.Level.ERROR),
    (logging.WARNING, _log.Level.WARN),
    (logging.INFO, _log.Level.INFO),
    (logging.DEBUG, _log.Level.DEBUG),
)


class _HostLogHandler(logging.Handler):
    """Sends `logging` records to the host, which tags them with stage and plugin."""

    def emit(self, record: logging.LogRecord) -> None:
        level = next((lv for n, lv in _LEVELS if record.levelno >= n), _log.Level.TRACE)
        try:
            message = self.format(record)
        except Exception:  # a bad format string must not crash the plugin
            message = str(record.msg)
        _log.log(level, message)


class _NoClock:
    """`time` as the logging module sees it. The sandbox grants no clock (reading
    one traps), so records carry time 0; the host stamps its own log lines."""

    @staticmethod
    def time() -> float:
        return 0.0

    @staticmethod
    def time_ns() -> int:
        return 0

    def __getattr__(self, name: str):
        return getattr(_time, name)


def install_logging() -> None:
    logging.time = _NoClock()
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False
    root = logging.getLogger()
    root.handlers[:] = [_HostLogHandler()]
    root.setLevel(logging.INFO)
    logging.raiseExceptions = False  # there is no stderr to print them to


def log_error(message: str) -> None:
    _log.log(_log.Level.ERROR, message)


def find_plugin_class(base: type, explicit: str) -> type:
    """The one subclass of `base` the plugin's module defines, or the class it
    names in `explicit` (e.g. `SINK = MySink`) when it defines several."""
    module = importlib.import_module(_info.MODULE)
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, base)
        and obj is not base
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
    ]
    named = getattr(module, explicit, None)
    what = f"{base.__module__.split('.')[0]}.{base.__name__}"
    if named is not None:
        if not (inspect.isclass(named) and issubclass(named, base)):
            raise TypeError(f"module `{module.__name__}`: {explicit} must be a {what} subclass")
        found = [named]
    if len(found) != 1:
        names = ", ".join(sorted(c.__name__ for c in found)) or "none"
        raise TypeError(
            f"module `{module.__name__}`: define exactly one subclass of {what} "
            f"(found: {names}), or name the one to export with `{explicit} = My{base.__name__}`"
        )
    return found[0]


# ----------------------------------------------------------------- connectors


def install_http(imported) -> None:
    """Sends `sluice.http` requests through the host's `http` import (the
    generated `wit_world.imports.http`), mapping its errors to exceptions."""
    import sluice
    from componentize_py_types import Err

    errors = (
        (imported.HttpError_Denied, sluice.http.Denied),
        (imported.HttpError_Timeout, sluice.http.Timeout),
        (imported.HttpError_TooLarge, sluice.http.TooLarge),
        (imported.HttpError_Failed, sluice.http.Failed),
    )

    def send(request):
        req = imported.Request(request.method, request.url, request.headers, request.body)
        try:
            resp = imported.send(req)
        except Err as e:
            for wit, exc in errors:
                if isinstance(e.value, wit):
                    raise exc(e.value.value) from None
            raise sluice.http.Failed(str(e.value)) from None
        return sluice.http.Response(resp.status, list(resp.headers), bytes(resp.body))

    sluice.http._transport = send


def install_clock(imported) -> None:
    """Reads `sluice.clock` from the host's `clock` import (the generated
    `wit_world.imports.clock`). Without the grant the host stops the
    pipeline at the first call, naming the grant."""
    import sluice

    sluice.clock._now_ms = imported.now_ms
    sluice.clock._monotonic_ns = imported.monotonic_ns


def open_plugin(cls: type, params, position):
    """Builds the plugin's source or sink; a refusal becomes the `open` error."""
    import sluice
    from componentize_py_types import Err

    try:
        return cls(
            sluice.Params([(p.name, p.value) for p in params]),
            None if position is None else bytes(position),
        )
    except sluice.ParamError as e:
        raise Err(str(e))
    except Exception as e:
        raise Err(f"{type(e).__name__}: {e}")


def guarded(fn, *args):
    """Calls a connector method: `Retry`/`Fatal` (and HTTP errors, through
    `sluice.connector.call`) become the call's error; anything else is a bug,
    logged to the host before the instance crashes (the host reopens it)."""
    import sluice
    from componentize_py_types import Err
    from wit_world.imports import types as _types

    try:
        return sluice.connector.call(fn, *args)
    except sluice.Retry as e:
        raise Err(_types.CallError_Retry(e.reason))
    except sluice.Fatal as e:
        raise Err(_types.CallError_Fatal(e.reason))
    except BaseException as e:
        log_error(sluice.describe_exception(e))
        raise
