"""Build glue for componentize-py: the `scalar` export (world `udf`).

`sluice plugin build` binds `sluice:plugin/scalar` to this module's name; the
app module's `SluiceScalar.call` calls :func:`call`. It finds the plugin's one
function marked with ``@sluice.udf`` (or the one named ``UDF = fn``).
"""

import importlib

import sluice_build_info as _info
import sluice_glue
from componentize_py_types import Err
from sluice import udfs as _udf

sluice_glue.install_logging()


def _find():
    module = importlib.import_module(_info.MODULE)
    named = getattr(module, "UDF", None)
    if named is not None:
        if not callable(named):
            raise TypeError(f"module `{module.__name__}`: UDF must be a function")
        return named
    found = [obj for obj in vars(module).values() if _udf.is_udf(obj)]
    if len(found) != 1:
        names = ", ".join(sorted(getattr(f, "__name__", "?") for f in found)) or "none"
        raise TypeError(
            f"module `{module.__name__}`: mark exactly one function with @sluice.udf "
            f"(found: {names}), or name it with `UDF = my_function`"
        )
    return found[0]


_FN = _find()


def call(args: bytes) -> bytes:
    try:
        return _udf.call(_FN, args)
    except _udf.UdfError as e:
        raise Err(str(e)) from None
