"""Build glue for componentize-py: the exported `sink` resource (world `sink`).

`sluice plugin build` binds `sluice:plugin/writer` to this module's name. It
finds the plugin's `sluice.Sink` subclass, adapts it to the contract, and
points `sluice.http` and `sluice.clock` at the host's `http` and `clock`
imports.
"""

import sluice
import sluice_glue
from sluice import connector as _conn
from wit_world.exports import sluice_writer as _exports
from wit_world.imports import clock as _clock_import
from wit_world.imports import http as _http_import
from wit_world.imports import types as _types

sluice_glue.install_logging()
sluice_glue.install_http(_http_import)
sluice_glue.install_clock(_clock_import)
_SINK = sluice_glue.find_plugin_class(sluice.Sink, "SINK")


class Sink(_exports.Sink):
    """One instance of the plugin's sink behind the contract's resource handle."""

    def __init__(self, inner: sluice.Sink) -> None:
        self._inner = inner

    @classmethod
    def open(cls, params, position):
        return cls(sluice_glue.open_plugin(_SINK, params, position))

    def write(self, events):
        batch = _conn.decode_batch(events.data, events.events, events.headers, events.streams)
        rejected = sluice_glue.guarded(_conn.write_batch, self._inner, batch)
        return [_types.Rejection(index, reason) for index, reason in rejected]

    def flush(self):
        return sluice_glue.guarded(_conn.flush_position, self._inner)
