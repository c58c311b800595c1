"""Build glue for componentize-py: the component's `describe` export.

Generated code is not involved here; `sluice plugin build` passes this module as
the app to componentize-py, with `sluice_build_info` (written per build: the
plugin's module and its pyproject metadata) on the path. Plugin authors never
import it.
"""

import sluice_build_info as _info
import sluice_transformer  # noqa: F401  (imports the plugin now, so errors show at build)
from wit_world import exports
from wit_world.imports import types as _types


class SluiceTransformer(exports.SluiceTransformer):
    """`describe`: the name, version and description from pyproject.toml."""

    def describe(self) -> _types.PluginInfo:
        return _types.PluginInfo(_info.NAME, _info.VERSION, _info.DESCRIPTION)
