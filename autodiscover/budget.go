package autodiscover

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/sync/semaphore"
)

// answerBudget bounds, in bytes, the memory of every answer being built or
// written at once: an answer takes its size before it is built (SOAP) or
// written (the rest), and gives it back once the client has it, however
// slowly the client reads. Slow readers then hold at most the budget,
// whatever their number (and each at most the server's write timeout).
//
// Answers over largeAnswer (only SOAP answers for many users and
// settings, and upstream answers, reach it) share three quarters of the
// budget among themselves, so that the ordinary answers of a few KiB
// always find room. Past the budget a request waits up to answerWait,
// then gets 503 with Retry-After.
type answerBudget struct {
	all, large *semaphore.Weighted
	size       int64
}

const (
	largeAnswer = 64 << 10
	answerWait  = time.Second
)

func newAnswerBudget(bytes int64) *answerBudget {
	return &answerBudget{all: semaphore.NewWeighted(bytes), large: semaphore.NewWeighted(bytes / 4 * 3), size: bytes}
}

// acquire takes n bytes, waiting until ctx ends; release gives them back.
// An answer larger than the large answers' share can never be had: the
// cost models keep every answer far below it (4 MiB at most, against a
// budget of at least 8 MiB).
func (b *answerBudget) acquire(ctx context.Context, n int64) (release func(), ok bool) {
	if n > largeAnswer {
		if n > b.size/4*3 || b.large.Acquire(ctx, n) != nil {
			return nil, false
		}
	}
	if b.all.Acquire(ctx, n) != nil {
		if n > largeAnswer {
			b.large.Release(n)
		}
		return nil, false
	}
	return func() {
		b.all.Release(n)
		if n > largeAnswer {
			b.large.Release(n)
		}
	}, true
}

// reserve takes n bytes of the answer budget for this request's answer,
// waiting at most answerWait. When it cannot, it answers 503 with
// Retry-After and reports false.
func (s *Server) reserve(w http.ResponseWriter, r *http.Request, n int) (release func(), ok bool) {
	ctx, cancel := context.WithTimeout(r.Context(), answerWait)
	defer cancel()
	release, ok = s.answerMemory.acquire(ctx, int64(n))
	if !ok {
		rec := reportOf(r)
		rec.outcome = OutcomeBusy
		w.Header().Set("Retry-After", strconv.Itoa(int(retryBusy/time.Second)))
		http.Error(w, "The server is busy writing other answers; try again in a few seconds.", http.StatusServiceUnavailable)
	}
	return release, ok
}

// retryBusy is the Retry-After of a 503 past the answer budget: about the
// write timeout, the longest a slow reader holds its share.
const retryBusy = 10 * time.Second

// send writes an answer that is already built, within the answer budget.
func (s *Server) send(w http.ResponseWriter, r *http.Request, status int, contentType, cacheControl string, b []byte) {
	release, ok := s.reserve(w, r, len(b))
	if !ok {
		return
	}
	defer release()
	writeBody(w, status, contentType, cacheControl, b)
}
