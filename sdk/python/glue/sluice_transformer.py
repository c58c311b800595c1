"""Build glue for componentize-py: the exported `transform` resource.

componentize-py looks up an exported interface's resources in the module named
after it; `sluice plugin build` renames `sluice:plugin/transformer` to
`sluice_transformer` so no plugin module can collide with it. This module finds
the plugin's `sluice.Transform` subclass and adapts it to the contract.
"""

import sluice
import sluice_glue
from componentize_py_types import Err
from wit_world.exports import sluice_transformer as _exports
from wit_world.imports import types as _types

sluice_glue.install_logging()
_TRANSFORM = sluice_glue.find_plugin_class(sluice.Transform, "TRANSFORM")


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
            sluice_glue.log_error(sluice.describe_exception(e))
            raise
