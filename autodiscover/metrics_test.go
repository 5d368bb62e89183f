package autodiscover

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The striped metrics, filled from many goroutines at once, expose what
// Prometheus's own CounterVec and HistogramVec expose for the same requests:
// the same series, counts and buckets (durations on and next to every
// bucket bound), and the same sums.
func TestMetricsMatchPrometheus(t *testing.T) {
	ours := prometheus.NewRegistry()
	m := NewMetrics(ours)
	theirs := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autodiscover_requests_total",
		Help: "Requests answered, by client dialect, outcome and configured domain (empty when none matched)."},
		[]string{"dialect", "outcome", "domain"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "autodiscover_request_duration_seconds",
		Help: "Time to answer a request, by client dialect.", Buckets: latencyBuckets[:]}, []string{"dialect"})
	theirs.MustRegister(requests, latency)

	var durations []time.Duration
	for _, b := range latencyBounds {
		durations = append(durations, b-1, b, b+1)
	}
	durations = append(durations, 0, 10*time.Second)
	recs := []record{
		{dialect: "pox", outcome: "settings", domain: "contoso.com"},
		{dialect: "pox", outcome: "bad_request"},
		{dialect: "autoconfig", outcome: "settings", domain: "fabrikam.com"},
	}
	var mu sync.Mutex // theirs is fed in the same order; ours from every goroutine at once
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 500 {
				rec := recs[(g+i)%len(recs)]
				d := durations[(g*7+i)%len(durations)]
				m.observe(&rec, d)
				mu.Lock()
				requests.WithLabelValues(rec.dialect, rec.outcome, rec.domain).Inc()
				latency.WithLabelValues(rec.dialect).Observe(d.Seconds())
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	got, want := gather(t, ours), gather(t, theirs)
	if len(got) != len(want) {
		t.Fatalf("%d series, want %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("series %s missing", k)
			continue
		}
		if g.GetCounter().GetValue() != w.GetCounter().GetValue() {
			t.Errorf("%s = %v, want %v", k, g.GetCounter().GetValue(), w.GetCounter().GetValue())
		}
		gh, wh := g.GetHistogram(), w.GetHistogram()
		if gh.GetSampleCount() != wh.GetSampleCount() || math.Abs(gh.GetSampleSum()-wh.GetSampleSum()) > 1e-9*wh.GetSampleSum() {
			t.Errorf("%s: count %d sum %v, want %d %v", k, gh.GetSampleCount(), gh.GetSampleSum(), wh.GetSampleCount(), wh.GetSampleSum())
		}
		for i, b := range wh.GetBucket() {
			if gb := gh.GetBucket()[i]; gb.GetUpperBound() != b.GetUpperBound() || gb.GetCumulativeCount() != b.GetCumulativeCount() {
				t.Errorf("%s bucket le=%v: %d, want le=%v: %d", k, gb.GetUpperBound(), gb.GetCumulativeCount(), b.GetUpperBound(), b.GetCumulativeCount())
			}
		}
	}
}

// gather is every series of reg by metric name and labels.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.Metric{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += "," + l.GetName() + "=" + l.GetValue()
			}
			out[k] = m
		}
	}
	return out
}
