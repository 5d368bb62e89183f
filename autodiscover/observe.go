package autodiscover

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// record is what a handler says about the request it answered; observe
// logs it. Only these fields are logged: never the path or query (they can
// hold an address), never a header (Authorization, cookies).
type record struct {
	dialect string
	domain  string
	outcome string
	status  int
}

type recordKey struct{}

// recordOf returns the request's record; a throwaway one when the request
// did not pass through observe (handlers called directly in tests).
func recordOf(r *http.Request) *record {
	if rec, ok := r.Context().Value(recordKey{}).(*record); ok {
		return rec
	}
	return &record{}
}

type statusWriter struct {
	http.ResponseWriter
	rec *record
}

func (w *statusWriter) WriteHeader(code int) {
	if w.rec.status == 0 {
		w.rec.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.rec.status == 0 {
		w.rec.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// observe logs one line per request.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &record{}
		next.ServeHTTP(&statusWriter{w, rec}, r.WithContext(context.WithValue(r.Context(), recordKey{}, rec)))
		s.Log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("dialect", rec.dialect),
			slog.String("domain", rec.domain),
			slog.String("outcome", rec.outcome),
			slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)),
		)
	})
}
