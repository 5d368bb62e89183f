package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/smallstep/pkcs7"
)

// Provider is a source of the certificates served in TLS handshakes.
type Provider interface {
	// GetCertificate is tls.Config.GetCertificate.
	GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
	// Cached returns the certificate served for host if one is at hand,
	// without obtaining one: for readiness, expiry metrics and signing.
	Cached(ctx context.Context, host string) (*tls.Certificate, error)
	// Trusted reports whether clients are expected to trust the
	// certificates (false for the self-signed development one).
	Trusted() bool
}

// ErrNoCertificate means no certificate for the host is at hand.
var ErrNoCertificate = errors.New("no certificate")

// Leaf returns c's leaf certificate, parsing it if needed.
func Leaf(c *tls.Certificate) (*x509.Certificate, error) {
	if c.Leaf != nil {
		return c.Leaf, nil
	}
	if len(c.Certificate) == 0 {
		return nil, ErrNoCertificate
	}
	return x509.ParseCertificate(c.Certificate[0])
}

// covering returns c if its leaf names host and is valid now.
func covering(c *tls.Certificate, host string, now time.Time) (*tls.Certificate, error) {
	if c == nil {
		return nil, fmt.Errorf("%w for %s: none loaded yet", ErrNoCertificate, host)
	}
	leaf, err := Leaf(c)
	if err != nil {
		return nil, err
	}
	if err := leaf.VerifyHostname(host); err != nil {
		return nil, fmt.Errorf("%w for %s: %v", ErrNoCertificate, host, err)
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("%w for %s: expired %s", ErrNoCertificate, host, leaf.NotAfter.Format(time.RFC3339))
	}
	return c, nil
}

// Static serves one certificate, such as the self-signed development one.
type Static struct {
	cert    atomic.Pointer[tls.Certificate]
	trusted bool
}

// NewStatic serves c; trusted says whether clients trust it.
func NewStatic(c *tls.Certificate, trusted bool) *Static {
	s := &Static{trusted: trusted}
	s.cert.Store(c)
	return s
}

func (s *Static) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert.Load(), nil
}

func (s *Static) Cached(_ context.Context, host string) (*tls.Certificate, error) {
	return covering(s.cert.Load(), host, time.Now())
}

func (s *Static) Trusted() bool { return s.trusted }

// SignCMS signs data as Apple profiles are signed: CMS SignedData, SHA-256,
// the content embedded, DER, with c's leaf and key and its intermediates
// (Apple's Configuration Profile Reference, "Signing"; the equivalent
// of openssl smime -sign -nodetach
// -outform der). smallstep/pkcs7 defaults to SHA-1, hence the explicit
// digest.
func SignCMS(data []byte, c *tls.Certificate) ([]byte, error) {
	leaf, err := Leaf(c)
	if err != nil {
		return nil, err
	}
	var parents []*x509.Certificate
	for _, der := range c.Certificate[1:] {
		p, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("sign: intermediate: %w", err)
		}
		parents = append(parents, p)
	}
	sd, err := pkcs7.NewSignedData(data)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSignerChain(leaf, c.PrivateKey, parents, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	der, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return der, nil
}
