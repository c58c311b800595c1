// Package source exports a Go custom source connector: the `source` world
// of contract 0.2.0. Importing it is what makes `sluice plugin build` build
// the source world.
//
//	func init() {
//		source.Export(sluice.Info{Name: "my-api", Version: "0.1.0"}, open)
//	}
//
// where open is a connector.OpenSource. See sluice.dev/sdk/connector.
package source

import (
	sluice "sluice.dev/sdk"
	"sluice.dev/sdk/connector"
)

var exported struct {
	info sluice.Info
	open connector.OpenSource
}

// Export registers the plugin's source. Call it once, from an init function
// of package main.
func Export(info sluice.Info, open connector.OpenSource) {
	exported.info = info
	exported.open = open
}
