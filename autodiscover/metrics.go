package autodiscover

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-request Prometheus metrics, registered by the caller.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	upstream *prometheus.CounterVec

	// The series each request lands in, looked up once: WithLabelValues
	// hashes every label byte and takes a read lock that all cores share,
	// on every request (issue 7). Series are never deleted, so a cached
	// one stays the registered one.
	requestSeries sync.Map // requestKey -> prometheus.Counter
	latencySeries sync.Map // dialect -> prometheus.Observer
}

type requestKey struct{ dialect, outcome, domain string }

// NewMetrics registers the request metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autodiscover_requests_total",
			Help: "Requests answered, by client dialect, outcome and configured domain (empty when none matched).",
		}, []string{"dialect", "outcome", "domain"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "autodiscover_request_duration_seconds",
			Help:    "Time to answer a request, by client dialect.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5},
		}, []string{"dialect"}),
	}
	m.upstream = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "autodiscover_upstream_requests_total",
		Help: "POX requests for upstream-mode domains, by result: ok, rewritten, cached, relayed_401, or fallback_* when the local answer was served.",
	}, []string{"domain", "result"})
	reg.MustRegister(m.requests, m.latency, m.upstream)
	return m
}

func (m *Metrics) observe(rec *record, d time.Duration) {
	if m == nil {
		return
	}
	k := requestKey{rec.dialect, rec.outcome, rec.domain}
	c, ok := m.requestSeries.Load(k)
	if !ok {
		c, _ = m.requestSeries.LoadOrStore(k, m.requests.WithLabelValues(k.dialect, k.outcome, k.domain))
	}
	c.(prometheus.Counter).Inc()
	o, ok := m.latencySeries.Load(rec.dialect)
	if !ok {
		o, _ = m.latencySeries.LoadOrStore(rec.dialect, m.latency.WithLabelValues(rec.dialect))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

func (m *Metrics) observeUpstream(domain string, res upstreamResult) {
	if m == nil {
		return
	}
	m.upstream.WithLabelValues(domain, string(res)).Inc()
}
