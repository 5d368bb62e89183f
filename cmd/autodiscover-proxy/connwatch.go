package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Connection timeouts. readTimeout is net/http's own (a request's header
// and body); the write and idle timeouts are kept by connWatch.
const (
	readTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
	idleTimeout  = 120 * time.Second
	watchTick    = time.Second
)

// connWatch keeps the write and idle timeouts of a server's connections
// on a clock that ticks once a second, as nginx's timer_resolution does.
// net/http's WriteTimeout and IdleTimeout read the clock and move a timer
// for every request, which cost about a tenth of a small request's time
// (bench/, issue 7); here a request stores two numbers.
//
//   - Writes: a connection's write deadline is moved only when it is less
//     than half the write timeout away, so a write that makes no progress
//     fails after between half and all of writeTimeout (a client that does
//     not read cannot hold a connection).
//   - Idle: a connection that waits for its next request longer than the
//     idle timeout is closed by the ticker.
//
// Run must be running while the watched listeners serve.
type connWatch struct {
	idle, write int64 // in ticks
	tick        time.Duration
	start       time.Time
	now         atomic.Int64 // ticks since start, advanced by Run

	mu    sync.Mutex
	conns map[*watchedConn]struct{}
}

func newConnWatch(idle, write, tick time.Duration) *connWatch {
	return &connWatch{idle: int64(idle / tick), write: max(2, int64(write/tick)), tick: tick, start: time.Now(), conns: map[*watchedConn]struct{}{}}
}

// Run advances the clock and closes idle connections until ctx ends.
func (w *connWatch) Run(ctx context.Context) {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := int64(time.Since(w.start) / w.tick)
		w.now.Store(now)
		w.mu.Lock()
		for c := range w.conns {
			if since := c.idleSince.Load(); since != 0 && now-(since-1) >= w.idle {
				c.Conn.Close() // the raw connection: closing TLS would write an alert
				delete(w.conns, c)
			}
		}
		w.mu.Unlock()
	}
}

// Listener watches the connections ln accepts.
func (w *connWatch) Listener(ln net.Listener) net.Listener { return watchedListener{ln, w} }

// ConnState is the http.Server hook that tells the watch which connections
// wait for a request.
func (w *connWatch) ConnState(nc net.Conn, st http.ConnState) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, ok := nc.(*watchedConn)
	if !ok {
		return
	}
	switch st {
	case http.StateIdle:
		c.idleSince.Store(w.now.Load() + 1) // +1: 0 means not idle
	case http.StateActive:
		c.idleSince.Store(0)
	case http.StateClosed, http.StateHijacked:
		w.mu.Lock()
		delete(w.conns, c)
		w.mu.Unlock()
	}
}

type watchedListener struct {
	net.Listener
	w *connWatch
}

func (l watchedListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &watchedConn{Conn: nc, w: l.w}
	l.w.mu.Lock()
	l.w.conns[c] = struct{}{}
	l.w.mu.Unlock()
	return c, nil
}

type watchedConn struct {
	net.Conn
	w             *connWatch
	writeDeadline atomic.Int64 // in ticks since start
	idleSince     atomic.Int64 // in ticks since start, +1; 0 while not idle
}

func (c *watchedConn) Write(p []byte) (int, error) {
	now := c.w.now.Load()
	if c.writeDeadline.Load() < now+c.w.write/2 {
		d := now + c.w.write
		if err := c.Conn.SetWriteDeadline(c.w.start.Add(time.Duration(d) * c.w.tick)); err != nil {
			return 0, err
		}
		c.writeDeadline.Store(d)
	}
	return c.Conn.Write(p)
}

// CloseWrite lets net/http half-close a TCP connection before closing it,
// as it does for an unwrapped one.
func (c *watchedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
