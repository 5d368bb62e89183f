package autodiscover

import (
	"bytes"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/internal/genconfig"
	"github.com/prometheus/client_golang/prometheus"
)

// benchHandler measures one handler in-process; allocations are reported
// for every dialect.
func benchHandler(b *testing.B, method, target, body string) {
	s := newTestServer(b, beforeCutoff, io.Discard)
	// As serve runs it: JSON request log, Prometheus metrics.
	s.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	s.Metrics = NewMetrics(prometheus.NewRegistry())
	// One client asks over and over: the page limit is not what is measured.
	s.Config().Limits.PagesPerClientPerMinute = math.MaxInt32
	h := s.HTTPSHandler()
	r := httptest.NewRequest(method, target, nil)
	r.Host = "autodiscover.contoso.com"
	w := &discardWriter{h: http.Header{}}
	rd := strings.NewReader(body)
	r.Body = io.NopCloser(rd)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body) // the harness allocates nothing per request
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	if w.code != http.StatusOK {
		b.Fatalf("status %d", w.code)
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK // as net/http: a body without a status is 200
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(code int) { w.code = code }

func BenchmarkPOXOutlook(b *testing.B) {
	benchHandler(b, "POST", "/autodiscover/autodiscover.xml", poxBody(reqOutlook, "jane@contoso.com", respOutlook))
}

func BenchmarkPOXMobileSync(b *testing.B) {
	benchHandler(b, "POST", "/autodiscover/autodiscover.xml", poxBody(reqMobile, "jane@contoso.com", respMobile))
}

func BenchmarkV2JSON(b *testing.B) {
	benchHandler(b, "GET", "/autodiscover/autodiscover.json?Email=jane@contoso.com&Protocol=ActiveSync", "")
}

func BenchmarkAutoconfig(b *testing.B) {
	benchHandler(b, "GET", "/mail/config-v1.1.xml?emailaddress=jane%40contoso.com", "")
}

// The setup page for one address: the QR code is drawn on every request.
func BenchmarkSetupPage(b *testing.B) {
	benchHandler(b, "GET", "/setup?email=jane%40contoso.com", "")
}

// serverWithDomains loads a generated config of n domains.
func serverWithDomains(b *testing.B, n int) *Server {
	b.Helper()
	var buf bytes.Buffer
	genconfig.Write(&buf, n)
	cfg, err := config.Parse(buf.Bytes(), "generated", "")
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	s.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	return s
}

// Per-request cost must not grow with the number of domains: the same POX
// request at 1, 1,000 and 100,000 domains (the last domain asked for).
func BenchmarkPOXByDomainCount(b *testing.B) {
	for _, n := range []int{1, 1000, 100000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			s := serverWithDomains(b, n)
			body := poxBody(reqOutlook, "jane@tenant"+strconv.Itoa(n-1)+".example", respOutlook)
			h := s.HTTPSHandler()
			r := httptest.NewRequest("POST", "/autodiscover/autodiscover.xml", nil)
			rd := strings.NewReader(body)
			r.Body = io.NopCloser(rd)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rd.Reset(body)
				clear(w.h)
				h.ServeHTTP(w, r)
			}
			if w.code != http.StatusOK {
				b.Fatalf("status %d", w.code)
			}
		})
	}
}

// Loading 100,000 domains: parse, validate and build every answer. The
// heap it keeps is reported as MB-live.
func BenchmarkLoad100000Domains(b *testing.B) {
	var buf bytes.Buffer
	genconfig.Write(&buf, 100000)
	var s *Server
	for b.Loop() {
		cfg, err := config.Parse(buf.Bytes(), "generated", "")
		if err != nil {
			b.Fatal(err)
		}
		if s, err = New(cfg); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(m.HeapAlloc)/(1<<20), "MB-live")
	runtime.KeepAlive(s)
}
