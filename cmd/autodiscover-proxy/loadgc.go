package main

import (
	"runtime"
	"runtime/debug"
)

// loadMemoryLimit is the heap a config load may grow to before the
// collector runs. A load allocates a burst of short-lived memory (the YAML
// library's node trees): collecting only near this limit, instead of each
// time the heap doubles from a few MB, saves most of the GC work, and the
// limit keeps the peak bounded. Large configs are parsed in chunks
// (config/chunked.go), so the live heap stays well below it.
const loadMemoryLimit = 170 << 20

// duringLoad runs the start-up load f under that setting, then restores
// Go's usual one and returns what the load left behind (in the background:
// serving need not wait). Only at start-up: a reload has the old config
// live beside the new one, near the limit, where the collector would run
// without pause while serving traffic.
func duringLoad(f func() error) error {
	gc := debug.SetGCPercent(-1)
	limit := debug.SetMemoryLimit(loadMemoryLimit)
	defer func() {
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(limit)
		go returnMemory()
	}()
	return f()
}

// returnMemory hands what a load left behind back to the operating system,
// so the resident size while serving is what serving needs.
func returnMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}
