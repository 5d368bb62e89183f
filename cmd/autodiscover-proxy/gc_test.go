package main

import (
	"context"
	"runtime"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 100},                   // nothing measured yet: Go's default
		{1 << 20, 3200},            // 1 MB scanned: may grow by 32 MB
		{4 << 20, 800},             // 4 MB (a small config): 32 MB more
		{32 << 20, 100},            // as large as the headroom: the default
		{120 << 20, 100},           // 100,000 domains: the default, never less
		{1 << 10, 10000},           // capped
		{servingHeadroom / 3, 300}, // rounds down
	} {
		if got := gcPercentFor(tc.live); got != tc.want {
			t.Errorf("gcPercentFor(%d) = %d, want %d", tc.live, got, tc.want)
		}
	}
}

// The percent follows the live heap, is set only when it changes, and an
// operator's GOGC wins.
func TestTuneGC(t *testing.T) {
	heaps := []uint64{1 << 20, 1 << 20, 16 << 20, 200 << 20}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	i := 0
	live := func() uint64 {
		h := heaps[min(i, len(heaps)-1)]
		if i++; i > len(heaps) {
			cancel()
		}
		return h
	}
	var set []int
	tuneGC(ctx, time.Millisecond, func(string) string { return "" }, live, func(p int) int { set = append(set, p); return 0 })
	want := []int{3200, 200, 100}
	if len(set) != len(want) {
		t.Fatalf("percents set %v, want %v", set, want)
	}
	for k := range want {
		if set[k] != want[k] {
			t.Fatalf("percents set %v, want %v", set, want)
		}
	}

	called := false
	tuneGC(context.Background(), time.Millisecond, func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	}, live, func(int) int { called = true; return 0 })
	if called {
		t.Error("GOGC set by the operator, yet the percent was changed")
	}
}

// gcBase reads real values from the runtime once a collection ran.
func TestGCBase(t *testing.T) {
	runtime.GC()
	if gcBase() == 0 {
		t.Error("GC base reads 0")
	}
}
