package main

import (
	"net"
	"net/http"
	"sync"

	"golang.org/x/net/netutil"
)

// connCap caps one listener's open connections: netutil.LimitListener
// holds new ones in the kernel's queue at the cap, and near it (nine
// tenths) the idle kept-alive connections are closed, so that a new client
// is served rather than an idle one kept. A connection that never finishes
// its handshake or header leaves at the read-header timeout.
type connCap struct {
	max  int
	mu   sync.Mutex
	open int
	idle map[net.Conn]bool
}

func newConnCap(max int) *connCap { return &connCap{max: max, idle: map[net.Conn]bool{}} }

// Listener is ln capped.
func (c *connCap) Listener(ln net.Listener) net.Listener { return netutil.LimitListener(ln, c.max) }

// ConnState is the http.Server hook that follows every connection.
func (c *connCap) ConnState(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case http.StateNew:
		c.open++
	case http.StateIdle:
		c.idle[conn] = true
	case http.StateActive:
		delete(c.idle, conn)
	case http.StateClosed, http.StateHijacked:
		c.open--
		delete(c.idle, conn)
	}
	if c.open*10 >= c.max*9 {
		for ic := range c.idle {
			ic.Close() // net/http's reader sees it and lets the connection go
			delete(c.idle, ic)
		}
	}
}
