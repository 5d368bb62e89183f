package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writePair(t *testing.T, dir, host string) {
	t.Helper()
	c, err := SelfSigned([]string{host}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
}

func servedName(t *testing.T, f *Files) string {
	t.Helper()
	c, err := f.GetCertificate(&tls.ClientHelloInfo{ServerName: "x"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := Leaf(c)
	return leaf.DNSNames[0]
}

func TestFilesReloadAndWatch(t *testing.T) {
	dir := t.TempDir()
	writePair(t, dir, "one.example.com")
	f, err := NewFiles(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if got := servedName(t, f); got != "one.example.com" {
		t.Fatalf("serves %s", got)
	}
	if _, err := f.Cached(t.Context(), "one.example.com"); err != nil {
		t.Errorf("Cached: %v", err)
	}
	if _, err := f.Cached(t.Context(), "other.example.com"); err == nil {
		t.Error("Cached accepts a host the certificate does not name")
	}

	// SIGHUP path: Reload picks up new files.
	writePair(t, dir, "two.example.com")
	if err := f.Reload(); err != nil || servedName(t, f) != "two.example.com" {
		t.Fatalf("after Reload: %v, serves %s", err, servedName(t, f))
	}

	// A broken replacement keeps the pair in use.
	os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("garbage"), 0o600)
	if err := f.Reload(); err == nil {
		t.Error("Reload accepted a broken certificate")
	}
	if got := servedName(t, f); got != "two.example.com" {
		t.Errorf("after a failed reload serves %s", got)
	}

	// Watch: a change on disk is picked up without a signal.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Watch compares with what was loaded last, whenever it starts.
	go f.Watch(ctx, 10*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	writePair(t, dir, "three.example.com")
	deadline := time.Now().Add(5 * time.Second)
	for servedName(t, f) != "three.example.com" {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not pick up the new files within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewFilesMissing(t *testing.T) {
	if _, err := NewFiles("/nonexistent/cert.pem", "/nonexistent/key.pem"); err == nil {
		t.Error("missing files accepted")
	}
}
