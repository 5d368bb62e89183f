package autodiscover

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// benchHandler measures one handler in-process; allocations are reported
// for every dialect (issue 7's target: <= 20 per POX request).
func benchHandler(b *testing.B, method, target, body string) {
	s := newTestServer(b, beforeCutoff, io.Discard)
	h := s.HTTPSHandler()
	r := httptest.NewRequest(method, target, nil)
	r.Host = "autodiscover.contoso.com"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		if body != "" {
			r.Body = io.NopCloser(strings.NewReader(body))
		}
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

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

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
