"""Build glue for componentize-py: the exported `transform` resource.

componentize-py looks up an exported interface's resources in the module named
after it; `sluice plugin build` renames `sluice:plugin/transformer` to
`sluice_transformer` so no plugin module can collide with it. This module finds
the plugin's `sluice.Transform` subclass and adapts it to the contract.
"""

import importlib
import inspect
import logging
import time as _time

import sluice
import sluice_build_info as _info
from componentize_py_types import Err
from wit_world.exports import sluice_transformer as _exports
from wit_world.imports import log as _log
from wit_world.imports import types as _types

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


def _install_logging() -> None:
    logging.time = _NoClock()
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False
    root = logging.getLogger()
    root.handlers[:] = [_HostLogHandler()]
    root.setLevel(logging.INFO)
    logging.raiseExceptions = False  # there is no stderr to print them to


def _find_transform() -> type:
    module = importlib.import_module(_info.MODULE)
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, sluice.Transform)
        and obj is not sluice.Transform
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
    ]
    explicit = getattr(module, "TRANSFORM", None)
    if explicit is not None:
        if not (inspect.isclass(explicit) and issubclass(explicit, sluice.Transform)):
            raise TypeError(f"module `{module.__name__}`: TRANSFORM must be a sluice.Transform subclass")
        found = [explicit]
    if len(found) != 1:
        names = ", ".join(sorted(c.__name__ for c in found)) or "none"
        raise TypeError(
            f"module `{module.__name__}`: define exactly one subclass of sluice.Transform "
            f"(found: {names}), or name the one to export with `TRANSFORM = MyTransform`"
        )
    return found[0]


_install_logging()
_TRANSFORM = _find_transform()


class Transform(_exports.Transform):
    """One instance of the plugin's transform behind the contract's resource handle."""

    def __init__(self, inner: sluice.Transform) -> None:
        self._inner = inner

    @classmethod
    def create(cls, params):
        try:
            inner = _TRANSFORM(sluice.Params([(p.name, p.value) for p in params]))
        except sluice.ParamError as e:
            raise Err(str(e))
        except Exception as e:
            raise Err(f"{type(e).__name__}: {e}")
        return cls(inner)

    def process(self, input):
        try:
            return sluice.run_batch(self._inner, input, _types)
        except sluice.Retry as e:
            raise Err(_types.CallError_Retry(e.reason))
        except sluice.Fatal as e:
            raise Err(_types.CallError_Fatal(e.reason))
        except BaseException as e:
            # A bug in the plugin: tell the host why, then let the instance crash
            # (the host replaces it and isolates the event that caused it).
            _log.log(_log.Level.ERROR, sluice.describe_exception(e))
            raise
