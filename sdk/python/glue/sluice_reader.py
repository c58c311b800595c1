"""Build glue for componentize-py: the exported `source` resource (world `source`).

`sluice plugin build` binds `sluice:plugin/reader` to this module's name. It
finds the plugin's `sluice.Source` subclass, adapts it to the contract, and
points `sluice.http` and `sluice.clock` at the host's `http` and `clock`
imports.
"""

import sluice
import sluice_glue
from sluice import connector as _conn
from wit_world.exports import sluice_reader as _exports
from wit_world.imports import clock as _clock_import
from wit_world.imports import http as _http_import
from wit_world.imports import types as _types

sluice_glue.install_logging()
sluice_glue.install_http(_http_import)
sluice_glue.install_clock(_clock_import)
_SOURCE = sluice_glue.find_plugin_class(sluice.Source, "SOURCE")


class Source(_exports.Source):
    """One instance of the plugin's source behind the contract's resource handle."""

    def __init__(self, inner: sluice.Source) -> None:
        self._inner = inner

    @classmethod
    def open(cls, params, position):
        return cls(sluice_glue.open_plugin(_SOURCE, params, position))

    def poll(self, max_events):
        out = _conn.Poll()
        sluice_glue.guarded(self._inner.poll, max_events, out)
        data, events, headers = out.encode()
        return _exports.Polled(
            _types.Batch(data, events, headers, []),
            [_exports.Malformed(raw, reason) for raw, reason in out.malformed_inputs],
            out.position,
            bool(out.caught_up),
            bool(out.done),
        )

    def commit(self, position):
        sluice_glue.guarded(self._inner.commit, bytes(position))
