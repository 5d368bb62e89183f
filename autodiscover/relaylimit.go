package autodiscover

import (
	"sync"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"golang.org/x/time/rate"
)

// relayLimiter bounds the sign-ins relayed to upstreams (relay_auth): each
// relayed Authorization header takes a token from its client IP's bucket
// and from its address's bucket, or is not relayed at all. Password
// spraying through autodiscover sends many credentials from few clients,
// or to many addresses from many clients; a mail client setting up an
// account signs in a handful of times.
type relayLimiter struct {
	mu        sync.Mutex
	clients   map[string]*rate.Limiter
	accounts  map[string]*rate.Limiter
	warned    map[string]time.Time // client -> when the log last said so
	lastSweep time.Time
}

// maxRelayKeys bounds each table (a few hundred bytes an entry). Past it,
// full buckets are forgotten (a new one starts full anyway); if the table
// is still full, new clients or addresses are not relayed: under such an
// attack the local answer is served rather than any limit forgotten.
const maxRelayKeys = 10000

// allow takes a token from both buckets, or from neither.
func (l *relayLimiter) allow(client, account string, lim config.Limits, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clients == nil {
		l.clients, l.accounts, l.warned = map[string]*rate.Limiter{}, map[string]*rate.Limiter{}, map[string]time.Time{}
	}
	c := l.bucket(l.clients, client, lim.RelayPerClientPerHour, now)
	a := l.bucket(l.accounts, account, lim.RelayPerAccountPerHour, now)
	if c == nil || a == nil || c.TokensAt(now) < 1 || a.TokensAt(now) < 1 {
		return false
	}
	c.AllowN(now, 1)
	a.AllowN(now, 1)
	return true
}

func (l *relayLimiter) bucket(m map[string]*rate.Limiter, key string, perHour int, now time.Time) *rate.Limiter {
	if b, ok := m[key]; ok {
		return b
	}
	if len(m) >= maxRelayKeys {
		l.sweep(now)
		if len(m) >= maxRelayKeys {
			return nil
		}
	}
	b := rate.NewLimiter(rate.Limit(float64(perHour)/3600), perHour)
	m[key] = b
	return b
}

// sweep forgets full buckets and old warnings, at most once a second.
func (l *relayLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < time.Second {
		return
	}
	l.lastSweep = now
	for _, m := range []map[string]*rate.Limiter{l.clients, l.accounts} {
		for k, b := range m {
			if b.TokensAt(now) >= float64(b.Burst()) {
				delete(m, k)
			}
		}
	}
	for k, t := range l.warned {
		if now.Sub(t) >= time.Minute {
			delete(l.warned, k)
		}
	}
}

// warnNow reports whether to log that a client went over its limit: once
// a minute per client at most, and not at all while the table is full.
func (l *relayLimiter) warnNow(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.warned[client]; ok && now.Sub(t) < time.Minute {
		return false
	}
	if len(l.warned) >= maxRelayKeys {
		l.sweep(now)
		if len(l.warned) >= maxRelayKeys {
			return false
		}
	}
	l.warned[client] = now
	return true
}
