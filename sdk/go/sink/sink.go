// Package sink exports a Go custom sink connector: the `sink` world of
// contract 0.2.0. Importing it is what makes `sluice plugin build` build
// the sink world.
//
//	func init() {
//		sink.Export(sluice.Info{Name: "my-hook", Version: "0.1.0"}, open)
//	}
//
// where open is a connector.OpenSink. See sluice.dev/sdk/connector.
package sink

import (
	sluice "sluice.dev/sdk"
	"sluice.dev/sdk/connector"
)

var exported struct {
	info sluice.Info
	open connector.OpenSink
}

// Export registers the plugin's sink. Call it once, from an init function
// of package main.
func Export(info sluice.Info, open connector.OpenSink) {
	exported.info = info
	exported.open = open
}
