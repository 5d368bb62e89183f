package certs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Files serves a certificate chain and key read from PEM files, and reads
// them again when they change on disk or on Reload (SIGHUP). A swap never
// touches established connections: only new handshakes see the new pair.
type Files struct {
	Static
	mu       sync.Mutex
	certFile string
	keyFile  string
	stamp    string
}

// NewFiles loads the pair; it fails if they do not load.
func NewFiles(certFile, keyFile string) (*Files, error) {
	f := &Files{certFile: certFile, keyFile: keyFile}
	f.trusted = true
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// NewFilesPending is NewFiles for files that may not be there yet (a
// Kubernetes secret not yet issued): with none loaded, Cached finds no
// certificate, and Watch loads the pair once it appears.
func NewFilesPending(certFile, keyFile string) (f *Files, loaded bool) {
	f = &Files{certFile: certFile, keyFile: keyFile}
	f.trusted = true
	return f, f.Reload() == nil
}

// stamp identifies the files' current contents cheaply.
func stamp(paths ...string) string {
	s := ""
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return ""
		}
		s += fmt.Sprintf("%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return s
}

// Reload reads both files again. On error the pair in use stays.
func (f *Files) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := stamp(f.certFile, f.keyFile)
	c, err := FromFiles(f.certFile, f.keyFile)
	if err != nil {
		return err
	}
	if c.Leaf == nil {
		if c.Leaf, err = Leaf(c); err != nil {
			return fmt.Errorf("parse %s: %w", f.certFile, err)
		}
	}
	f.stamp = st
	f.cert.Store(c)
	return nil
}

// Watch polls the files every interval until ctx ends and reloads them
// when they change (certbot and cert-manager replace them in place).
func (f *Files) Watch(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.mu.Lock()
		same := stamp(f.certFile, f.keyFile) == f.stamp
		f.mu.Unlock()
		if same {
			continue
		}
		if err := f.Reload(); err != nil {
			log.Error("certificate files changed but do not load; keeping the previous pair", "err", err)
			continue
		}
		log.Info("certificate files changed: reloaded", "cert_file", f.certFile)
	}
}
