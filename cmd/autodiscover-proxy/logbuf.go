package main

import (
	"context"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// logFlushInterval bounds how long a request line waits in a buffer.
const logFlushInterval = 100 * time.Millisecond

// logShardSize is one buffer's size: a write(2) when it fills.
const logShardSize = 64 << 10

// bufferedLog batches request lines into few writes: one write(2) per
// request line costs as much as answering the request. Each CPU fills its
// own buffer (a shard), so two CPUs logging at once share neither a lock
// nor a cache line; a buffer is written out when it fills, within
// logFlushInterval, and at Close. Request lines from different CPUs may
// therefore reach the output out of order, by less than the flush
// interval (each line carries its time), as with nginx's buffered access
// log and several workers. Every other line (Write) is written at once,
// after every line logged before it. Lines are whole: slog writes each
// record in one call.
type bufferedLog struct {
	out    io.Writer
	outMu  sync.Mutex // one write to out at a time
	shards []logShard
	pick   sync.Pool // *logShard: Get returns the one this P used last
	next   atomic.Uint32
	stop   chan struct{}
	done   chan struct{}
}

type logShard struct {
	mu  sync.Mutex
	buf []byte
	_   [128 - 32]byte // one shard per pair of cache lines: no false sharing
}

func newBufferedLog(w io.Writer) *bufferedLog {
	b := &bufferedLog{out: w, shards: make([]logShard, runtime.GOMAXPROCS(0)), stop: make(chan struct{}), done: make(chan struct{})}
	for i := range b.shards {
		b.shards[i].buf = make([]byte, 0, logShardSize)
	}
	// A P without a shard (at first, or after a collection emptied the
	// pool) takes the next one in turn; a shard two Ps share is still
	// correct, its lock taken by both.
	b.pick.New = func() any { return &b.shards[int(b.next.Add(1)-1)%len(b.shards)] }
	go b.flushLoop()
	return b
}

// Write writes p at once, after every line written before it.
func (b *bufferedLog) Write(p []byte) (int, error) {
	b.Flush()
	b.outMu.Lock()
	defer b.outMu.Unlock()
	return b.out.Write(p)
}

// WriteRequestLine buffers one whole line in the calling CPU's shard.
func (b *bufferedLog) WriteRequestLine(p []byte) error {
	s := b.pick.Get().(*logShard)
	defer b.pick.Put(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf)+len(p) > cap(s.buf) {
		if err := b.writeOut(s); err != nil {
			return err
		}
	}
	s.buf = append(s.buf, p...)
	return nil
}

// writeOut writes s's buffer; s.mu is held (always taken before outMu).
func (b *bufferedLog) writeOut(s *logShard) error {
	if len(s.buf) == 0 {
		return nil
	}
	b.outMu.Lock()
	_, err := b.out.Write(s.buf)
	b.outMu.Unlock()
	s.buf = s.buf[:0]
	return err
}

func (b *bufferedLog) flushLoop() {
	defer close(b.done)
	t := time.NewTicker(logFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.Flush()
		}
	}
}

// Flush writes out what is buffered.
func (b *bufferedLog) Flush() {
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		b.writeOut(s)
		s.mu.Unlock()
	}
}

// Close stops the flusher and writes out the rest.
func (b *bufferedLog) Close(context.Context) {
	close(b.stop)
	<-b.done
	b.Flush()
}
