package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
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

// servingHeadroom is how far the heap may grow past what the collector
// scans (live heap, goroutine stacks, globals) before it runs while
// serving. Go's default (GOGC=100) collects each time that doubles, from a
// 4 MB floor: with a small config, dozens of collections a second under
// load, each shrinking the connections' goroutine stacks that the next
// request grows again. 32 MB of headroom means a few a second at the
// benchmark's rate (bench/); much more makes it slower again, as a heap
// that keeps growing into fresh pages pays page faults and cache misses.
// A config that needs more than the headroom gets Go's default.
const servingHeadroom = 32 << 20

// gcTuneInterval is how often the scanned size is re-read: a burst of
// connections grows it, and the percent follows within this time.
const gcTuneInterval = time.Second

// gcPercentFor is the GC percent that lets the heap grow by
// servingHeadroom past base (the bytes GOGC applies to), and never less
// than Go's default of 100.
func gcPercentFor(base uint64) int {
	if base == 0 {
		return 100
	}
	return int(min(max(100, servingHeadroom*100/base), 10000))
}

// tuneGC sets the GC percent from the scanned size now and every interval
// until ctx ends. An operator's GOGC, if set, is left alone.
func tuneGC(ctx context.Context, interval time.Duration, getenv func(string) string, base func() uint64, setPercent func(int) int) {
	if getenv("GOGC") != "" {
		return
	}
	last := 0
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if p := gcPercentFor(base()); p != last {
			setPercent(p)
			last = p
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// gcBase is what GOGC's percent applies to: the heap the last collection
// found live, plus goroutine stacks and globals (Go 1.18 GC pacer).
func gcBase() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	metrics.Read(s)
	var n uint64
	for _, v := range s {
		if v.Value.Kind() == metrics.KindUint64 {
			n += v.Value.Uint64()
		}
	}
	return n
}
