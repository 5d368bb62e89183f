package certs

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// Host states, as doctor, the log and the metrics name them.
const (
	StateWaitingDNS = "waiting_dns" // the name has no address yet: not ordered, tried again later
	StateIssuing    = "issuing"     // an order is under way
	StateIssued     = "issued"      // a certificate is at hand
	StateFailing    = "failing"     // the last order failed: tried again later
)

// States lists every state, in the order they are shown.
var States = []string{StateWaitingDNS, StateIssuing, StateIssued, StateFailing}

// Backoff between tries of a name whose DNS has no address, or whose
// order failed: a minute, doubling to six hours. A CA pauses a name after
// repeated failed validations; a provider onboarding customers whose DNS
// is not pointed at the service yet would spend that on every handshake.
const (
	firstRetry = time.Minute
	maxRetry   = 6 * time.Hour
)

// Let's Encrypt allows 300 new orders per account per 3 hours.
const (
	ordersPerWindow = 300
	orderWindow     = 3 * time.Hour
)

// HostState is what is known of one host's certificate.
type HostState struct {
	Host    string
	State   string
	Since   time.Time
	Retry   time.Time // waiting_dns, failing: not tried before then
	Tries   int       // consecutive failed tries
	Problem string    // why it waits or fails
}

// onboarding decides, before a name is ordered, whether it may be: its
// DNS must give an address, its backoff must have passed, and the order
// must fit the CA's pace (a full window of orders at once, then a queue:
// a wait, never a refusal).
type onboarding struct {
	lookup func(ctx context.Context, host string) ([]string, error)
	now    func() time.Time
	log    *slog.Logger
	pace   pacer

	mu    sync.Mutex
	hosts map[string]*HostState
}

// pacer admits an order once the window has room, waiting until then.
type pacer interface {
	Wait(ctx context.Context) error
}

func newOnboarding(log *slog.Logger, pace pacer) *onboarding {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &onboarding{lookup: net.DefaultResolver.LookupHost, now: time.Now, log: log, pace: pace, hosts: map[string]*HostState{}}
}

// set moves host to state, logging a change.
func (o *onboarding) set(host, state, problem string, retry time.Time, tries int) {
	o.mu.Lock()
	h := o.hosts[host]
	if h == nil {
		h = &HostState{Host: host}
		o.hosts[host] = h
	}
	changed := h.State != state
	if changed {
		h.Since = o.now()
	}
	h.State, h.Problem, h.Retry, h.Tries = state, problem, retry, tries
	o.mu.Unlock()
	if changed {
		o.log.Info("certificate state", "host", host, "state", state, "problem", problem)
	}
}

// before is called when host is about to be ordered. An error says why
// it is not, now.
func (o *onboarding) before(ctx context.Context, host string) error {
	o.mu.Lock()
	h := o.hosts[host]
	var retry time.Time
	tries, problem := 0, ""
	if h != nil {
		retry, tries, problem = h.Retry, h.Tries, h.Problem
	}
	o.mu.Unlock()
	if now := o.now(); now.Before(retry) {
		return fmt.Errorf("acme: %s is not ordered before %s (%s)", host, retry.Format(time.RFC3339), problem)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	addrs, err := o.lookup(lctx, host)
	cancel()
	if err != nil || len(addrs) == 0 {
		problem := "DNS gives the name no address: point it at this service"
		if err != nil {
			problem = "DNS: " + err.Error()
		}
		o.set(host, StateWaitingDNS, problem, o.now().Add(backoff(tries)), tries+1)
		return fmt.Errorf("acme: %s is not ordered: %s", host, problem)
	}
	if err := o.pace.Wait(ctx); err != nil {
		return fmt.Errorf("acme: %s waits for the CA's pace: %w", host, err)
	}
	o.set(host, StateIssuing, "", time.Time{}, tries)
	return nil
}

// after records an order's outcome.
func (o *onboarding) after(host string, err error) {
	if err == nil {
		o.set(host, StateIssued, "", time.Time{}, 0)
		return
	}
	o.mu.Lock()
	tries := 0
	if h := o.hosts[host]; h != nil {
		tries = h.Tries
	}
	o.mu.Unlock()
	o.set(host, StateFailing, err.Error(), o.now().Add(backoff(tries)), tries+1)
}

// backoff is the wait after tries failed tries.
func backoff(tries int) time.Duration {
	d := firstRetry
	for range tries {
		if d *= 2; d >= maxRetry {
			return maxRetry
		}
	}
	return d
}

// snapshot is every host's state, sorted by host.
func (o *onboarding) snapshot() []HostState {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]HostState, 0, len(o.hosts))
	for _, h := range o.hosts {
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b HostState) int { return strings.Compare(a.Host, b.Host) })
	return out
}

// windowPacer admits at most ordersPerWindow orders in any orderWindow in
// this process: a full window at once, then each as the oldest leaves it.
type windowPacer struct {
	mu    sync.Mutex
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error // nil: a timer
	at    []time.Time                                      // the admitted orders still in the window, oldest first
}

func (p *windowPacer) Wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		now := p.now()
		for len(p.at) > 0 && now.Sub(p.at[0]) >= orderWindow {
			p.at = p.at[1:]
		}
		if len(p.at) < ordersPerWindow {
			p.at = append(p.at, now)
			p.mu.Unlock()
			return nil
		}
		wait := orderWindow - now.Sub(p.at[0])
		p.mu.Unlock()
		sleep := p.sleep
		if sleep == nil {
			sleep = sleepCtx
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
