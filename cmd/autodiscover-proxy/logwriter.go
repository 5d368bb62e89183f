package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logFlushDelay is the longest a log line waits in the buffer.
const logFlushDelay = 100 * time.Millisecond

// logWriter batches log lines into one write(2) per batch: a line waits at
// most logFlushDelay, a full buffer is written at once, and Close writes
// what is left (serve closes it on every way out, SIGTERM included). One
// lock and one buffer: lines stay whole and in order.
type logWriter struct {
	mu      sync.Mutex
	buf     *bufio.Writer
	pending *time.Timer // set while buffered lines wait for it
}

func newLogWriter(w io.Writer) *logWriter {
	return &logWriter{buf: bufio.NewWriterSize(w, 32<<10)}
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.buf.Write(p)
	if l.buf.Buffered() > 0 && l.pending == nil {
		l.pending = time.AfterFunc(logFlushDelay, l.Flush)
	}
	return n, err
}

// Flush writes out every buffered line now.
func (l *logWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = nil
	l.buf.Flush()
}

// Close writes out every buffered line.
func (l *logWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending != nil {
		l.pending.Stop()
		l.pending = nil
	}
	return l.buf.Flush()
}
