package main

import (
	"context"
	"crypto/tls"
	"errors"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Connection timeouts, kept by connWatch.
const (
	readTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
	idleTimeout  = 120 * time.Second
	watchTick    = time.Second
)

// connWatch keeps a server's read, write and idle timeouts on a clock that
// ticks once a second, as nginx's timer_resolution does. net/http's own
// timeouts read a clock and move a runtime timer several times per request (its
// read deadline alone is set twice per request, and cleared twice), which
// cost about a tenth of a small request's time (bench/, issue 7); here a
// request stores a few numbers.
//
//   - Reads: net/http still computes its deadlines from ReadTimeout (the
//     TLS handshake, then each request's header and body from its first
//     byte). A watched connection keeps such a deadline as a number, and
//     the ticker closes a connection whose deadline has passed: at most a
//     tick late, never early. Deadlines in the past (net/http's way to stop
//     its background read) and cleared ones reach the connection at once.
//   - Writes: a connection's write deadline is moved only when it is less
//     than half the write timeout away, so a write that makes no progress
//     fails after between half and all of writeTimeout (a client that does
//     not read cannot hold a connection). net/http clears the write
//     deadline after every request; here it stays.
//   - Idle: a connection that waits for its next request longer than the
//     idle timeout is closed by the ticker.
//
// Run must be running while the watched listeners serve.
type connWatch struct {
	read        time.Duration // the http.Server's ReadTimeout
	idle, write int64         // in ticks
	tick        time.Duration
	start       time.Time
	now         atomic.Int64 // ticks since start, advanced by Run

	mu    sync.Mutex
	conns map[*watchedConn]struct{}
}

func newConnWatch(read, write, idle, tick time.Duration) *connWatch {
	return &connWatch{read: read, idle: int64(idle / tick), write: max(2, int64(write/tick)), tick: tick, start: time.Now(), conns: map[*watchedConn]struct{}{}}
}

// ticks is t on the watch's clock, rounded up: a deadline kept in ticks
// passes no earlier than t. (Sub saturates: no overflow for any t.)
func (w *connWatch) ticks(t time.Time) int64 {
	d := t.Sub(w.start)
	n := int64(d / w.tick)
	if d%w.tick > 0 {
		n++
	}
	return n
}

// Run advances the clock and closes idle connections, and those past
// their read deadline, until ctx ends.
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
			since, d := c.idleSince.Load(), c.readDeadline.Load()
			idle := since != 0 && now-(since-1) >= w.idle
			late := d != 0 && now >= d // a read past its deadline: net/http would close too
			if idle || late {
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
	readDeadline  atomic.Int64 // in ticks since start; 0: none
	readStopped   atomic.Bool  // the connection's own read deadline is in the past
	writeDeadline atomic.Int64 // in ticks since start; heldPast while a past deadline holds
	idleSince     atomic.Int64 // in ticks since start, +1; 0 while not idle
}

// heldPast marks a write deadline in the past set by the caller: writes
// fail until the caller clears it.
const heldPast = math.MaxInt64

// SetReadDeadline keeps a deadline in the future as a number for the
// ticker; a cleared one, or one already passed on the watch's clock,
// reaches the connection. net/http calls it six times per request.
func (c *watchedConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		if c.readDeadline.Load() != 0 {
			c.readDeadline.Store(0)
		}
	} else if d := c.w.ticks(t); d < c.w.now.Load() {
		c.readDeadline.Store(0)
		c.readStopped.Store(true)
		return c.Conn.SetReadDeadline(t)
	} else {
		c.readDeadline.Store(d)
	}
	if c.readStopped.Load() {
		c.readStopped.Store(false)
		return c.Conn.SetReadDeadline(time.Time{})
	}
	return nil
}

// SetWriteDeadline lets the caller's deadlines through, except a cleared
// one: the write timeout (Write) keeps a deadline on every write.
func (c *watchedConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		if c.writeDeadline.Load() != heldPast {
			return nil
		}
		c.writeDeadline.Store(0) // Write sets one
	} else if d := c.w.ticks(t); d < c.w.now.Load() {
		c.writeDeadline.Store(heldPast)
	} else {
		c.writeDeadline.Store(d - 1) // rounded down
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *watchedConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
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
