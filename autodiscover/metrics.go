package autodiscover

import (
	"strconv"
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
	statuses *prometheus.CounterVec
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
		statuses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autodiscover_http_responses_total",
			Help: "Answers by HTTP status class: 2xx, 3xx, 4xx, 5xx.",
		}, []string{"class"}),
	}
	for _, c := range []string{"2xx", "3xx", "4xx", "5xx"} {
		m.statuses.WithLabelValues(c) // present from the start, at 0
	}
	reg.MustRegister(m.requests, m.latency, m.upstream, m.inFlight, m.statuses)
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
	status := rec.status
	if status == 0 { // nothing written: net/http answers 200
		status = 200
	}
	if c := status / 100; c >= 2 && c <= 5 {
		m.statuses.WithLabelValues(strconv.Itoa(c) + "xx").Inc()
	}
}

func (m *Metrics) observeUpstream(domain string, res upstreamResult) {
	if m == nil {
		return
	}
	m.upstream.WithLabelValues(domain, string(res)).Inc()
}
