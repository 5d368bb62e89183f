package main

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/netutil"
)

// connCap caps one listener's open connections: netutil.LimitListener
// holds new ones in the kernel's queue at the cap, and near it (nine
// tenths) the connections that wait for nothing useful are closed, so that
// the queue moves and a new client is served: idle kept-alive ones, and
// ones that have said nothing for silentGrace since they were accepted
// (a client sends its TLS hello or request at once). Otherwise a silent
// connection leaves at the read-header timeout.
type connCap struct {
	max    int
	mu     sync.Mutex
	open   int
	idle   map[net.Conn]bool
	silent map[net.Conn]time.Time // accepted, nothing read yet: since when
}

// silentGrace is how long a new connection may stay silent near the cap.
const silentGrace = time.Second

func newConnCap(max int) *connCap {
	return &connCap{max: max, idle: map[net.Conn]bool{}, silent: map[net.Conn]time.Time{}}
}

// Listener is ln capped.
func (c *connCap) Listener(ln net.Listener) net.Listener { return netutil.LimitListener(ln, c.max) }

// ConnState is the http.Server hook that follows every connection.
func (c *connCap) ConnState(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case http.StateNew:
		c.open++
		c.silent[conn] = time.Now()
	case http.StateIdle:
		c.idle[conn] = true
	case http.StateActive:
		delete(c.idle, conn)
		delete(c.silent, conn)
	case http.StateClosed, http.StateHijacked:
		c.open--
		delete(c.idle, conn)
		delete(c.silent, conn)
	}
	c.shedLocked(time.Now())
}

// Run sheds connections every half second until ctx ends: at the cap no
// new connection arrives to prompt it.
func (c *connCap) Run(ctx context.Context) {
	t := time.NewTicker(silentGrace / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.mu.Lock()
			c.shedLocked(now)
			c.mu.Unlock()
		}
	}
}

// shedLocked closes idle and long-silent connections when near the cap;
// net/http sees the close and lets each go.
func (c *connCap) shedLocked(now time.Time) {
	if c.open*10 < c.max*9 {
		return
	}
	for ic := range c.idle {
		ic.Close()
		delete(c.idle, ic)
	}
	for sc, since := range c.silent {
		if now.Sub(since) >= silentGrace {
			sc.Close()
			delete(c.silent, sc)
		}
	}
}
