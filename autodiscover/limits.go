package autodiscover

import (
	"sync"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"golang.org/x/time/rate"
)

// limiterTable is a token bucket per key (a client IP, an address), at
// most maxLimiterKeys of them (a few hundred bytes each). Past that, full
// buckets are forgotten (a new one starts full anyway); if the table is
// still full, new keys get no bucket: under such an attack the cheap
// answer is served rather than any limit forgotten.
type limiterTable struct {
	m         map[string]*rate.Limiter
	lastSweep time.Time
}

const maxLimiterKeys = 10000

// bucket is key's bucket of burst tokens refilled at perSecond, or nil.
func (t *limiterTable) bucket(key string, perSecond float64, burst int, now time.Time) *rate.Limiter {
	if b, ok := t.m[key]; ok {
		return b
	}
	if t.m == nil {
		t.m = map[string]*rate.Limiter{}
	}
	if len(t.m) >= maxLimiterKeys && now.Sub(t.lastSweep) >= time.Second {
		t.lastSweep = now
		for k, b := range t.m {
			if b.TokensAt(now) >= float64(b.Burst()) {
				delete(t.m, k)
			}
		}
	}
	if len(t.m) >= maxLimiterKeys {
		return nil
	}
	b := rate.NewLimiter(rate.Limit(perSecond), burst)
	t.m[key] = b
	return b
}

// relayLimiter bounds the sign-ins relayed to upstreams (relay_auth): each
// relayed Authorization header takes a token from its client IP's bucket
// and from its address's bucket, or is not relayed at all. Password
// spraying through autodiscover sends many credentials from few clients,
// or to many addresses from many clients; a mail client setting up an
// account signs in a handful of times.
type relayLimiter struct {
	mu                sync.Mutex
	clients, accounts limiterTable
	warnings          limiterTable // a log line a minute per client
}

// allow takes a token from both buckets, or from neither.
func (l *relayLimiter) allow(client, account string, lim config.Limits, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients.bucket(client, float64(lim.RelayPerClientPerHour)/3600, lim.RelayPerClientPerHour, now)
	a := l.accounts.bucket(account, float64(lim.RelayPerAccountPerHour)/3600, lim.RelayPerAccountPerHour, now)
	if c == nil || a == nil || c.TokensAt(now) < 1 || a.TokensAt(now) < 1 {
		return false
	}
	c.AllowN(now, 1)
	a.AllowN(now, 1)
	return true
}

// warnNow reports whether to log that a client went over its limit: once
// a minute per client at most (a bucket of one, refilled each minute), for
// at most maxLimiterKeys clients a minute.
func (l *relayLimiter) warnNow(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.warnings.bucket(client, 1.0/60, 1, now)
	return b != nil && b.AllowN(now, 1)
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
	b := l.clients.bucket(client, float64(perMinute)/60, perMinute, now)
	return b != nil && b.AllowN(now, 1)
}
