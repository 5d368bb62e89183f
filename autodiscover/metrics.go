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
// Every request lands in a counter and a histogram. Kept in Prometheus's
// own CounterVec and HistogramVec, each request's atomic additions landed on
// cache lines all cores share, and a request on one core took them away
// from the other (issue 7). Here each P counts in its own shard, and a
// scrape adds the shards up (Collect): a striped counter.
type Metrics struct {
	requests, latency *prometheus.Desc
	upstream          *prometheus.CounterVec

	shards []metricShard
	pick   sync.Pool // *metricShard: Get returns the one this P used last
	next   atomic.Uint32
}

type requestKey struct{ dialect, outcome, domain string }

type metricShard struct {
	requests sync.Map // requestKey -> *requestCount
	latency  sync.Map // dialect -> *latencyCounts
	_        [128]byte
}

// requestCount fills a cache line: counts of different shards never share one.
type requestCount struct {
	n atomic.Uint64
	_ [56]byte
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
		requests: prometheus.NewDesc("autodiscover_requests_total",
			"Requests answered, by client dialect, outcome and configured domain (empty when none matched).",
			[]string{"dialect", "outcome", "domain"}, nil),
		latency: prometheus.NewDesc("autodiscover_request_duration_seconds",
			"Time to answer a request, by client dialect.", []string{"dialect"}, nil),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autodiscover_upstream_requests_total",
			Help: "POX requests for upstream-mode domains, by result: ok, rewritten, cached, relayed_401, or fallback_* when the local answer was served.",
		}, []string{"domain", "result"}),
		shards: make([]metricShard, runtime.GOMAXPROCS(0)),
	}
	// A P without a shard takes the next one in turn; a shard two Ps share
	// still counts right (atomics), only slower.
	m.pick.New = func() any { return &m.shards[int(m.next.Add(1)-1)%len(m.shards)] }
	reg.MustRegister(m, m.upstream)
	return m
}

func (m *Metrics) observe(rec *record, d time.Duration) {
	if m == nil {
		return
	}
	sh := m.pick.Get().(*metricShard)
	defer m.pick.Put(sh)
	k := requestKey{rec.dialect, rec.outcome, rec.domain}
	c, ok := sh.requests.Load(k)
	if !ok {
		c, _ = sh.requests.LoadOrStore(k, new(requestCount))
	}
	c.(*requestCount).n.Add(1)
	l, ok := sh.latency.Load(rec.dialect)
	if !ok {
		l, _ = sh.latency.LoadOrStore(rec.dialect, new(latencyCounts))
	}
	h := l.(*latencyCounts)
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] { // Prometheus buckets are "le": d <= bound
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
}

// Describe is part of prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.requests
	ch <- m.latency
}

// Collect adds up the shards (prometheus.Collector). A histogram's count is
// the sum of the bucket counts it read, so the two always agree.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	requests := map[requestKey]uint64{}
	type histogram struct {
		buckets [len(latencyBuckets) + 1]uint64
		sum     int64
	}
	latency := map[string]*histogram{}
	for i := range m.shards {
		sh := &m.shards[i]
		sh.requests.Range(func(k, c any) bool {
			requests[k.(requestKey)] += c.(*requestCount).n.Load()
			return true
		})
		sh.latency.Range(func(k, l any) bool {
			h := latency[k.(string)]
			if h == nil {
				h = new(histogram)
				latency[k.(string)] = h
			}
			for j := range h.buckets {
				h.buckets[j] += l.(*latencyCounts).buckets[j].Load()
			}
			h.sum += l.(*latencyCounts).sum.Load()
			return true
		})
	}
	for k, n := range requests {
		// Errors (label values that are not UTF-8) leave the series out
		// rather than fail the scrape; config domains are valid UTF-8.
		if c, err := prometheus.NewConstMetric(m.requests, prometheus.CounterValue, float64(n), k.dialect, k.outcome, k.domain); err == nil {
			ch <- c
		}
	}
	for dialect, h := range latency {
		cumulative := make(map[float64]uint64, len(latencyBuckets))
		var count uint64
		for j, le := range latencyBuckets {
			count += h.buckets[j]
			cumulative[le] = count
		}
		count += h.buckets[len(latencyBuckets)]
		if c, err := prometheus.NewConstHistogram(m.latency, count, time.Duration(h.sum).Seconds(), cumulative, dialect); err == nil {
			ch <- c
		}
	}
}

func (m *Metrics) observeUpstream(domain string, res upstreamResult) {
	if m == nil {
		return
	}
	m.upstream.WithLabelValues(domain, string(res)).Inc()
}
