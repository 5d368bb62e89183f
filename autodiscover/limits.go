package autodiscover

import (
	"container/list"
	"net/http"
	"sync"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"golang.org/x/time/rate"
)

// limiterTable is a token bucket per key (a client, an address), at most
// maxLimiterKeys of them (a few hundred bytes each). A full table forgets
// the bucket used least recently to make room: it never refuses a new
// key for being new, so no number of clients locks out the next one. A
// forgotten bucket starts full when its key comes back; that is why every
// table that guards credentials has a server-wide bucket behind it,
// which no number of keys multiplies.
type limiterTable struct {
	m     map[string]*list.Element // of *limiterEntry
	order list.List                // most recently used first
}

type limiterEntry struct {
	key    string
	bucket *rate.Limiter
}

const maxLimiterKeys = 10000

// bucket is key's bucket of burst tokens refilled at perSecond.
func (t *limiterTable) bucket(key string, perSecond float64, burst int) *rate.Limiter {
	if e, ok := t.m[key]; ok {
		t.order.MoveToFront(e)
		return e.Value.(*limiterEntry).bucket
	}
	if t.m == nil {
		t.m = map[string]*list.Element{}
	}
	if len(t.m) >= maxLimiterKeys {
		oldest := t.order.Back()
		t.order.Remove(oldest)
		delete(t.m, oldest.Value.(*limiterEntry).key)
	}
	b := rate.NewLimiter(rate.Limit(perSecond), burst)
	t.m[key] = t.order.PushFront(&limiterEntry{key, b})
	return b
}

// clientKey names the client a request's per-client limits apply to: its
// address (clientIP) for IPv4, its limits.client_ipv6_prefix network for
// IPv6, since a home or an office gets a whole /64 or more and picks any
// address in it.
func clientKey(r *http.Request, cfg *config.Config) string {
	a := clientAddr(r, cfg.TrustedProxies)
	if !a.Is6() {
		return a.String()
	}
	p, err := a.Prefix(cfg.Limits.ClientIPv6Prefix)
	if err != nil { // not reached: the prefix length is validated
		return a.String()
	}
	return p.String()
}

// relayLimiter bounds the sign-ins relayed to upstreams (relay_auth): each
// relayed Authorization header takes a token from its client's bucket,
// from its address's bucket and from the server-wide bucket, or is not
// relayed at all. Password spraying through autodiscover sends many
// credentials from few clients, or to many addresses from many clients;
// a mail client setting up an account signs in a handful of times.
type relayLimiter struct {
	mu                sync.Mutex
	clients, accounts limiterTable
	all               *rate.Limiter // limits.relay_per_minute, server-wide
	warnings          limiterTable  // a log line a minute per client
}

// allow takes a token from every bucket, or from none.
func (l *relayLimiter) allow(client, account string, lim config.Limits, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	perSecond := rate.Limit(float64(lim.RelayPerMinute) / 60)
	if l.all == nil {
		l.all = rate.NewLimiter(perSecond, lim.RelayPerMinute)
	} else if l.all.Limit() != perSecond || l.all.Burst() != lim.RelayPerMinute { // a reloaded config
		l.all.SetLimitAt(now, perSecond)
		l.all.SetBurstAt(now, lim.RelayPerMinute)
	}
	c := l.clients.bucket(client, float64(lim.RelayPerClientPerHour)/3600, lim.RelayPerClientPerHour)
	a := l.accounts.bucket(account, float64(lim.RelayPerAccountPerHour)/3600, lim.RelayPerAccountPerHour)
	if c.TokensAt(now) < 1 || a.TokensAt(now) < 1 || l.all.TokensAt(now) < 1 {
		return false
	}
	c.AllowN(now, 1)
	a.AllowN(now, 1)
	l.all.AllowN(now, 1)
	return true
}

// warnNow reports whether to log that a client went over its limit: once
// a minute per client at most (a bucket of one, refilled each minute).
func (l *relayLimiter) warnNow(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.warnings.bucket(client, 1.0/60, 1).AllowN(now, 1)
}

// pageLimiter bounds the setup pages and profiles one client gets: they
// cost more than an API answer (a template, a QR code, a signature), and a
// person needs a few.
type pageLimiter struct {
	mu      sync.Mutex
	clients limiterTable
}

func (l *pageLimiter) allow(client string, perMinute int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.clients.bucket(client, float64(perMinute)/60, perMinute).AllowN(now, 1)
}
