package autodiscover

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-request Prometheus metrics, registered by the caller.
// Their label values are the Dialect, Outcome and upstreamResult constants.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	upstream *prometheus.CounterVec
	inFlight prometheus.Gauge
}

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
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autodiscover_upstream_requests_total",
			Help: "POX requests for upstream-mode domains, by result: ok, rewritten, cached, relayed_401, or fallback_* when the local answer was served.",
		}, []string{"domain", "result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autodiscover_requests_in_flight",
			Help: "Requests being answered now.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.upstream, m.inFlight)
	return m
}

// begin counts a request in flight until the returned func is called.
func (m *Metrics) begin() func() {
	if m == nil {
		return func() {}
	}
	m.inFlight.Inc()
	return m.inFlight.Dec
}

func (m *Metrics) observe(rec *report, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(string(rec.dialect), string(rec.outcome), rec.domain).Inc()
	m.latency.WithLabelValues(string(rec.dialect)).Observe(d.Seconds())
}

func (m *Metrics) observeUpstream(domain string, res upstreamResult) {
	if m == nil {
		return
	}
	m.upstream.WithLabelValues(domain, string(res)).Inc()
}
