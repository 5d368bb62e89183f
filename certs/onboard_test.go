package certs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/internal/pgtest"
)

// 500 hosts of which 100 do not resolve: those are never ordered, and are
// tried again only after their backoff (a minute, doubling to six hours);
// the 400 others are admitted at the CA's pace, a full window of 300 at
// once and the rest as the window moves, never refused.
func TestOnboardingSparesTheCA(t *testing.T) {
	clock := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	var admitted []time.Time
	pace := &windowPacer{now: now, sleep: func(_ context.Context, d time.Duration) error { advance(d); return nil }}
	o := newOnboarding(nil, pace)
	o.now = now
	lookups := map[string]int{}
	o.lookup = func(_ context.Context, host string) ([]string, error) {
		lookups[host]++
		if strings.HasPrefix(host, "unpointed") {
			return nil, nil
		}
		return []string{"192.0.2.1"}, nil
	}
	var hosts []string
	for i := range 400 {
		hosts = append(hosts, fmt.Sprintf("autodiscover.customer%d.example", i))
	}
	for i := range 100 {
		hosts = append(hosts, fmt.Sprintf("unpointed%d.example", i))
	}
	for _, h := range hosts {
		err := o.before(context.Background(), h)
		if strings.HasPrefix(h, "unpointed") {
			if err == nil {
				t.Fatalf("%s has no address and was admitted", h)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		admitted = append(admitted, now())
		o.after(h, nil)
	}
	if len(admitted) != 400 {
		t.Fatalf("%d of 400 pointed hosts admitted", len(admitted))
	}
	// No window of three hours holds more than 300 orders; the first 300 went at once.
	for i := range admitted {
		n := 0
		for _, at := range admitted[i:] {
			if at.Sub(admitted[i]) < orderWindow {
				n++
			}
		}
		if n > ordersPerWindow {
			t.Fatalf("%d orders within three hours of order %d", n, i)
		}
	}
	if !admitted[299].Equal(admitted[0]) || admitted[300].Sub(admitted[0]) < orderWindow {
		t.Errorf("the full window was not available at once, or the next order did not wait for it: %v, %v", admitted[299], admitted[300])
	}

	counts := map[string]int{}
	for _, s := range o.snapshot() {
		counts[s.State]++
	}
	if counts[StateIssued] != 400 || counts[StateWaitingDNS] != 100 {
		t.Errorf("states %v", counts)
	}

	// Backoff: an unpointed name is not looked up again before its time,
	// then every time a little later (doubling, at most six hours).
	h := "unpointed0.example"
	before := lookups[h]
	if err := o.before(context.Background(), h); err == nil || lookups[h] != before {
		t.Errorf("tried again within its backoff (%d lookups)", lookups[h]-before)
	}
	for _, want := range []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute} {
		advance(want/2 + time.Second)
		o.before(context.Background(), h)
		retry := o.snapshot()
		for _, s := range retry {
			if s.Host == h && s.Retry.Sub(now()) != want {
				t.Errorf("next try in %v, want %v", s.Retry.Sub(now()), want)
			}
		}
	}
	if backoff(20) != maxRetry {
		t.Errorf("the backoff grows past six hours: %v", backoff(20))
	}

	// A failed order is failing, and backs off too.
	o.after("autodiscover.customer1.example", errors.New("acme: urn:ietf:params:acme:error:connection"))
	for _, s := range o.snapshot() {
		if s.Host == "autodiscover.customer1.example" && (s.State != StateFailing || !s.Retry.After(now())) {
			t.Errorf("after a failed order: %+v", s)
		}
	}
}

// The fleet's pace is kept in the shared store: replicas together get a
// full window at once, and the next order waits.
func TestFleetPaceInPostgres(t *testing.T) {
	pgtest.Setenv(t)
	a, b := newPGCache(t), newPGCache(t)
	for i := range ordersPerWindow {
		c := a
		if i%2 == 1 {
			c = b
		}
		if err := c.Wait(t.Context()); err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond) // how long the test looks
	defer cancel()
	if err := b.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("order %d in the window: %v, want a wait", ordersPerWindow+1, err)
	}
}
