"""Build glue for componentize-py: the component's `describe` export.

Generated code is not involved here; `sluice plugin build` passes this module as
the app to componentize-py, with `sluice_build_info` (written per build: the
world, the plugin's module and its pyproject metadata) on the path. The world
decides which export this module provides and which glue module it imports:
`sluice_transformer`, `sluice_reader` (source), `sluice_writer` (sink) or
`sluice_scalar` (udf).
Plugin authors never import it.
"""

import sluice_build_info as _info
from wit_world import exports
from wit_world.imports import types as _types

_WORLD = getattr(_info, "WORLD", "transform")


def _describe(self) -> _types.PluginInfo:
    """The name, version and description from pyproject.toml."""
    return _types.PluginInfo(_info.NAME, _info.VERSION, _info.DESCRIPTION)


# Each branch imports its glue now, so a plugin that fails to import fails the build.
if _WORLD == "source":
    import sluice_reader  # noqa: F401

    class SluiceReader(exports.SluiceReader):
        describe = _describe

elif _WORLD == "udf":
    import sluice_scalar

    class SluiceScalar(exports.SluiceScalar):
        describe = _describe

        def call(self, args: bytes) -> bytes:
            return sluice_scalar.call(args)

elif _WORLD == "sink":
    import sluice_writer  # noqa: F401

    class SluiceWriter(exports.SluiceWriter):
        describe = _describe

else:
    import sluice_transformer  # noqa: F401

    class SluiceTransformer(exports.SluiceTransformer):
        describe = _describe
