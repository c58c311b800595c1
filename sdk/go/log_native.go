//go:build !wasip1

package sluice

import (
	"fmt"
	"os"
)

var levelNames = [...]string{"trace", "debug", "info", "warn", "error"}

// hostLog stands in for the host's log import in native builds (tests).
func hostLog(level Level, msg string) {
	name := "log"
	if int(level) < len(levelNames) {
		name = levelNames[level]
	}
	fmt.Fprintf(os.Stderr, "[%s] %s\n", name, msg)
}
