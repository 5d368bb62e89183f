// Package testpki makes certificate chains for tests, shaped like a public
// CA's: a root, an intermediate, and a leaf for the given host names.
package testpki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Chain is a leaf certificate with its intermediate, and the root.
type Chain struct {
	Cert  *tls.Certificate // leaf and intermediate, with the leaf's key
	Root  *x509.Certificate
	Roots *x509.CertPool // only Root
}

// New makes a chain valid for an hour around now.
func New(t testing.TB, hosts ...string) *Chain {
	t.Helper()
	now := time.Now()
	mk := func(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, key
	}
	ca := func(serial int64, name string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	root, rootKey := mk(ca(1, "Test Root"), nil, nil)
	mid, midKey := mk(ca(2, "Test Intermediate"), root, rootKey)
	leaf, leafKey := mk(&x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, mid, midKey)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	return &Chain{
		Cert:  &tls.Certificate{Certificate: [][]byte{leaf.Raw, mid.Raw}, PrivateKey: leafKey, Leaf: leaf},
		Root:  root,
		Roots: roots,
	}
}

// WriteFiles writes cert.pem (leaf, then intermediate), key.pem and ca.pem
// (the root) into dir.
func (c *Chain) WriteFiles(t testing.TB, dir string) (certFile, keyFile, caFile string) {
	t.Helper()
	var chain bytes.Buffer
	for _, der := range c.Cert.Certificate {
		pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.Cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	for f, data := range map[string][]byte{
		certFile: chain.Bytes(),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
		caFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Root.Raw}),
	} {
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, caFile
}
