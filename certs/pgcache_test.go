package certs

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/internal/pgtest"
	"golang.org/x/crypto/acme/autocert"
)

func newPGCache(t *testing.T) *PGCache {
	t.Helper()
	c, err := NewPGCache(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// The store keeps what autocert Puts; replicas starting at once create the
// schema once; a miss on a certificate makes the replica the one to order
// it, and another replica waits, then reads what the first Put; a replica
// that dies while ordering frees the order for another.
func TestPGCache(t *testing.T) {
	pgtest.Setenv(t)
	// Four replicas start at once.
	var wg sync.WaitGroup
	caches := make([]*PGCache, 4)
	errs := make([]error, 4)
	for i := range caches {
		wg.Add(1)
		go func() { defer wg.Done(); caches[i], errs[i] = NewPGCache(t.Context()) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		t.Cleanup(caches[i].Close)
	}
	a, b := caches[0], caches[1]
	ctx := t.Context()

	if _, err := a.Get(ctx, "x+http-01"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("a missing token: %v", err)
	}
	if err := a.Put(ctx, "x+http-01", []byte("token")); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, "x+http-01"); err != nil || string(got) != "token" {
		t.Errorf("another replica reads %q, %v", got, err)
	}
	if err := b.Delete(ctx, "x+http-01"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "x+http-01"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Errorf("after Delete: %v", err)
	}

	// a misses the certificate: it orders. b's Get, under autocert's lock,
	// does not wait (ErrOrdering); its AwaitOrder waits, then b reads it.
	host := "autodiscover.example.com"
	if _, err := a.Get(ctx, host); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("first miss: %v", err)
	}
	if _, err := b.Get(ctx, host); !errors.Is(err, ErrOrdering) {
		t.Errorf("another replica's Get while a orders: %v, want ErrOrdering", err)
	}
	got := make(chan []byte, 1)
	go func() {
		if err := b.AwaitOrder(ctx, host); err != nil {
			t.Errorf("the waiting replica: %v", err)
		}
		data, err := b.Get(ctx, host)
		if err != nil {
			t.Errorf("the waiting replica: %v", err)
		}
		got <- data
	}()
	select {
	case data := <-got:
		t.Fatalf("the second replica did not wait for the first one's order: %q", data)
	case <-time.After(200 * time.Millisecond): // a bound on how long the test looks, not on the code
	}
	if err := a.Put(ctx, host, []byte("certificate")); err != nil {
		t.Fatal(err)
	}
	select {
	case data := <-got:
		if string(data) != "certificate" {
			t.Errorf("the waiting replica read %q, want the first one's certificate", data)
		}
	case <-time.After(time.Minute):
		t.Fatal("the waiting replica never got the certificate")
	}

	// c misses another certificate and dies before it Puts: d orders it.
	c, d := caches[2], caches[3]
	other := "autoconfig.example.com"
	if _, err := c.Get(ctx, other); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		if err := d.AwaitOrder(ctx, other); err != nil {
			done <- err
			return
		}
		_, err := d.Get(ctx, other)
		done <- err
	}()
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, autocert.ErrCacheMiss) {
			t.Errorf("after the ordering replica died: %v, want a miss (this replica orders)", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the lock of a dead replica was never freed")
	}
	d.Release(other)
	if err := a.Ping(context.Background()); err != nil {
		t.Error(err)
	}
}
