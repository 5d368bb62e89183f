package autodiscover

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

// clientIP is the peer address, or, when the peer is a trusted proxy, the
// right-most X-Forwarded-For address that is not itself a trusted proxy:
// what a client writes to the left of that is not believed.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	a := clientAddr(r, trusted)
	if !a.IsValid() {
		return "invalid IP"
	}
	return a.String()
}

// clientAddr is clientIP as an address; invalid when the peer's is.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if config.TrustedProxy(peer, trusted) {
		// The header's values joined by commas are one list, read right to left.
		items := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(items) - 1; i >= 0; i-- {
			a := parseAddr(strings.TrimSpace(items[i]))
			if !a.IsValid() {
				break // garbage: stop believing the header here
			}
			peer = a
			if !config.TrustedProxy(a, trusted) {
				break
			}
		}
	}
	return peer
}

// fromTrustedProxy reports whether the peer is a trusted proxy.
func fromTrustedProxy(r *http.Request, trusted []netip.Prefix) bool {
	return config.TrustedProxy(parseAddr(r.RemoteAddr), trusted)
}

// parseAddr reads "ip", "ip:port" or "[ip]:port", IPv4-mapped IPv6 as IPv4.
func parseAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// peerSet remembers peers seen, up to a bound; past it, it starts afresh.
type peerSet struct {
	mu   sync.Mutex
	seen map[netip.Addr]bool
}

// maxRememberedPeers bounds peerSet: a few hundred bytes each at most.
const maxRememberedPeers = 1024

// firstTime reports whether a is new to the set, and adds it.
func (p *peerSet) firstTime(a netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[a] {
		return false
	}
	if p.seen == nil || len(p.seen) >= maxRememberedPeers {
		p.seen = map[netip.Addr]bool{}
	}
	p.seen[a] = true
	return true
}
