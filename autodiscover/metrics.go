package autodiscover

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-request Prometheus metrics, registered by the caller.
//
// Every request lands in a counter and a histogram. The histogram's
// updates (a bucket, the count, the sum) landed, in Prometheus's own
// HistogramVec, on cache lines all cores share: a request on one core took
// them from the other (issue 7). Latency is therefore counted per P, in its
// own shard, and a scrape adds the shards up (Collect): a striped counter.
// It has a few series (one per dialect). The request counter has one per
// domain, outcome and dialect, up to hundreds of thousands: it stays one
// Prometheus counter per series (a shard each would multiply its memory by
// the number of cores), and two cores contend only on the same series.
type Metrics struct {
	requests *prometheus.CounterVec
	upstream *prometheus.CounterVec
	latency  *prometheus.Desc

	// The series each request lands in, looked up once: WithLabelValues
	// hashes every label byte and takes a read lock that all cores share,
	// on every request. Series are never deleted, so a cached one stays
	// the registered one.
	requestSeries sync.Map // requestKey -> prometheus.Counter

	shards []latencyShard
	pick   sync.Pool // *latencyShard: Get returns the one this P used last
	next   atomic.Uint32
}

type requestKey struct{ dialect, outcome, domain string }

type latencyShard struct {
	byDialect sync.Map // dialect -> *latencyCounts
	_         [128]byte
}

// latencyBuckets are the histogram's upper bounds, in seconds.
var latencyBuckets = [...]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5}

// latencyBounds are latencyBuckets as durations (exact: whole nanoseconds).
var latencyBounds = func() []time.Duration {
	out := make([]time.Duration, len(latencyBuckets))
	for i, s := range latencyBuckets {
		out[i] = time.Duration(s * 1e9)
	}
	return out
}()

// latencyCounts is one dialect's histogram in one shard: a count per
// bucket (not cumulative; the last is above every bound) and the sum.
type latencyCounts struct {
	buckets [len(latencyBuckets) + 1]atomic.Uint64
	sum     atomic.Int64 // nanoseconds: added exactly, without a compare-and-swap loop
}

// NewMetrics registers the request metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autodiscover_requests_total",
			Help: "Requests answered, by client dialect, outcome and configured domain (empty when none matched).",
		}, []string{"dialect", "outcome", "domain"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autodiscover_upstream_requests_total",
			Help: "POX requests for upstream-mode domains, by result: ok, rewritten, cached, relayed_401, or fallback_* when the local answer was served.",
		}, []string{"domain", "result"}),
		latency: prometheus.NewDesc("autodiscover_request_duration_seconds",
			"Time to answer a request, by client dialect.", []string{"dialect"}, nil),
		shards: make([]latencyShard, runtime.GOMAXPROCS(0)),
	}
	// A P without a shard takes the next one in turn; a shard two Ps share
	// still counts right (atomics), only slower.
	m.pick.New = func() any { return &m.shards[int(m.next.Add(1)-1)%len(m.shards)] }
	reg.MustRegister(m.requests, m.upstream, m)
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

	sh := m.pick.Get().(*latencyShard)
	defer m.pick.Put(sh)
	l, ok := sh.byDialect.Load(rec.dialect)
	if !ok {
		l, _ = sh.byDialect.LoadOrStore(rec.dialect, new(latencyCounts))
	}
	h := l.(*latencyCounts)
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] { // Prometheus buckets are "le": d <= bound
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
}

// Describe is part of prometheus.Collector: the latency histogram.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.latency }

// Collect adds up the shards' histograms (prometheus.Collector). A
// histogram's count is the sum of the bucket counts it read, so the two
// always agree.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	type histogram struct {
		buckets [len(latencyBuckets) + 1]uint64
		sum     int64
	}
	latency := map[string]*histogram{}
	for i := range m.shards {
		m.shards[i].byDialect.Range(func(k, v any) bool {
			h, l := latency[k.(string)], v.(*latencyCounts)
			if h == nil {
				h = new(histogram)
				latency[k.(string)] = h
			}
			for j := range h.buckets {
				h.buckets[j] += l.buckets[j].Load()
			}
			h.sum += l.sum.Load()
			return true
		})
	}
	for dialect, h := range latency {
		cumulative := make(map[float64]uint64, len(latencyBuckets))
		var count uint64
		for j, le := range latencyBuckets {
			count += h.buckets[j]
			cumulative[le] = count
		}
		count += h.buckets[len(latencyBuckets)]
		ch <- prometheus.MustNewConstHistogram(m.latency, count, time.Duration(h.sum).Seconds(), cumulative, dialect)
	}
}

func (m *Metrics) observeUpstream(domain string, res upstreamResult) {
	if m == nil {
		return
	}
	m.upstream.WithLabelValues(domain, string(res)).Inc()
}
