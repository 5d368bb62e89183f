package doctor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/clientcheck"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

// LiveOptions say how to reach the running service.
type LiveOptions struct {
	// Connect is the host:port to dial for every host name; empty dials
	// each name on port 443 as clients do.
	Connect string
	// Roots verify the service's certificates; nil means the system roots.
	Roots *x509.CertPool
	// Now is the clock for days-left; zero means time.Now.
	Now time.Time
	// Insecure checks a development server: its certificate is not
	// verified (doctor -insecure-dev), and the finding says so.
	Insecure bool
	// UserAgent is sent with every probe, so that the service's log tells
	// doctor's requests from clients'.
	UserAgent string
}

// devCertificate is the subject of the certificate serve makes when it has
// none (certs.SelfSigned).
const devCertificate = "autodiscover-proxy development certificate"

// certWarnDays is when an expiring certificate becomes a warning.
const certWarnDays = 14

// CheckLive connects to the service over HTTPS for each host name, checks
// the certificate, asks every dialect and reads each answer the way its
// client does (clientcheck), comparing the servers with the config.
func CheckLive(ctx context.Context, domains []*config.Domain, o LiveOptions) []Finding {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	var out []Finding
	for _, d := range domains {
		for _, n := range d.Names() {
			email := "doctor-check@" + n
			c, f := connect(ctx, "autodiscover."+n, o, now)
			out = append(out, f)
			if c != nil {
				for _, client := range clientsFor(d, "autodiscover."+n, now) {
					out = append(out, askClient(ctx, c, "autodiscover."+n, client, email, d, o.UserAgent))
				}
			}
			out = append(out, checkAutoconfig(ctx, n, email, d, o, now)...)
		}
	}
	return out
}

// checkAutoconfig asks for Thunderbird's document where Thunderbird looks:
// autoconfig.<n>, else https://<n>/.well-known/autoconfig/.... Without
// either, Thunderbird falls back to POX Autodiscover, which carries no
// sign-in method: it offers a password, and Exchange Online refuses it.
func checkAutoconfig(ctx context.Context, n, email string, d *config.Domain, o LiveOptions, now time.Time) []Finding {
	host := "autoconfig." + n
	c, f := connect(ctx, host, o, now)
	if c != nil {
		return []Finding{f, askClient(ctx, c, host, "thunderbird", email, d, o.UserAgent)}
	}
	if apex, af := connect(ctx, n, o, now); apex != nil {
		if a := askClient(ctx, apex, n, "thunderbird", email, d, o.UserAgent); a.Level == Pass {
			return []Finding{{Pass, "live", host, "not reachable (" + f.Message + "), but " + n + " serves /.well-known/autoconfig, which Thunderbird also asks", ""}, af, a}
		}
	}
	f.Message += "; nor does https://" + n + "/.well-known/autoconfig/mail/config-v1.1.xml answer. Thunderbird then falls back to " +
		"Exchange Autodiscover (POX), which carries no sign-in method: it offers a password, which " + d.Provider.DisplayName + " may refuse"
	f.Fix = "point autoconfig." + n + " at this service (autodiscover-proxy dns -target HOST prints the record) and serve a certificate for it; " + f.Fix
	return []Finding{f}
}

// clientsFor are the clients that ask host: the Apple profile only where
// the domain offers one (none is right for a domain whose sign-in no
// profile can carry), ActiveSync clients only where it has ActiveSync.
func clientsFor(d *config.Domain, host string, now time.Time) []string {
	if strings.HasPrefix(host, "autoconfig.") {
		return []string{"thunderbird"}
	}
	clients := []string{"outlook", "soap"}
	if len(d.ProfileKinds(now)) > 0 {
		clients = append(clients, "apple")
	}
	if d.ActiveSyncURL != "" {
		clients = append(clients, "mobilesync", "json")
	}
	return clients
}

// connect verifies host's certificate and returns a client for it.
func connect(ctx context.Context, host string, o LiveOptions, now time.Time) (*http.Client, Finding) {
	addr := net.JoinHostPort(host, "443")
	if o.Connect != "" {
		addr = o.Connect
	}
	tlsConf := &tls.Config{ServerName: host, RootCAs: o.Roots, MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure}
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
	}
	conn, err := (&tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: tlsConf}).DialContext(ctx, "tcp", addr)
	if err != nil {
		fix := "check that the service runs and serves a valid certificate for " + host + " (readyz, ACME log)"
		var unknown x509.UnknownAuthorityError
		switch {
		case errors.As(err, &unknown) && unknown.Cert != nil && unknown.Cert.Subject.CommonName == devCertificate:
			fix = "this is serve's development certificate (no tls: in the config): to check a development server, " +
				"pass -insecure-dev; for mail clients, serve a publicly trusted certificate (tls.acme or cert_file/key_file)"
		case errors.As(err, &unknown):
			fix = "the certificate's CA is not trusted here: for a private CA, give its certificate with -ca FILE (PEM); " +
				"for mail clients on the Internet, serve a publicly trusted certificate (tls.acme)"
		}
		return nil, Finding{Fail, "live", host, "TLS to " + addr + ": " + err.Error(), fix}
	}
	leaf := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
	conn.Close()
	days := int(leaf.NotAfter.Sub(now).Hours() / 24)
	f := Finding{Pass, "live", host, fmt.Sprintf("certificate valid for %s until %s (%d days)", host, leaf.NotAfter.Format("2006-01-02"), days), ""}
	switch {
	case o.Insecure:
		f = Finding{Warn, "live", host, "certificate not verified (-insecure-dev): " + leaf.Subject.CommonName, "mail clients verify it: serve a publicly trusted certificate before going live"}
	case days < certWarnDays:
		f.Level, f.Fix = Warn, "renew the certificate (ACME renews 30 days ahead: check its log)"
	}
	tr := &http.Transport{TLSClientConfig: tlsConf, DialContext: dial, ForceAttemptHTTP2: true}
	return &http.Client{Transport: tr, Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, f
}

func askClient(ctx context.Context, c *http.Client, host, client, email string, d *config.Domain, userAgent string) Finding {
	subject := host + " " + client
	p, err := clientcheck.ProbeFor(client, email, "")
	if err != nil {
		return Finding{Fail, "live", subject, err.Error(), ""}
	}
	req, err := http.NewRequestWithContext(ctx, p.Method, "https://"+host+p.Path, strings.NewReader(p.Body))
	if err != nil {
		return Finding{Fail, "live", subject, err.Error(), ""}
	}
	if p.ContentType != "" {
		req.Header.Set("Content-Type", p.ContentType)
	}
	for k, v := range p.Header {
		req.Header.Set(k, v)
	}
	if userAgent != "" {
		req.Header.Set("User-Agent", userAgent)
	}
	resp, err := c.Do(req)
	if err != nil {
		return Finding{Fail, "live", subject, err.Error(), "check the service's log"}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return Finding{Fail, "live", subject, fmt.Sprintf("HTTP %d %v", resp.StatusCode, err), "check the service's log for this request"}
	}
	ans, err := p.Read(resp.StatusCode, resp.Header.Get("Content-Type"), body)
	if err != nil {
		return Finding{Fail, "live", subject, "clients cannot read the answer: " + err.Error(), "check the service version and config"}
	}
	if msg := foreignHosts(ans, d, host); msg != "" {
		return Finding{Fail, "live", subject, msg, "check the config of " + d.Name + " and any upstream"}
	}
	if client == "apple" && bytes.HasPrefix(body, []byte("<?xml")) {
		return Finding{Warn, "live", subject, "the profile is unsigned: devices show it as Unverified", "serve a trusted certificate (tls.acme or cert files)"}
	}
	return Finding{Pass, "live", subject, fmt.Sprintf("answer read as %s does (%d servers, %d URLs), hosts as configured", client, len(ans.Servers), len(ans.URLs)), ""}
}

// foreignHosts names any server or URL host in an answer that the config
// does not name for the domain, consumer hosts first.
func foreignHosts(a *clientcheck.Answer, d *config.Domain, host string) string {
	allowed := map[string]bool{host: true, "autodiscover." + d.Name: true}
	for _, s := range []*config.Server{d.IMAP, d.POP3, d.SMTP} {
		if s != nil {
			allowed[s.Host] = true
		}
	}
	for _, u := range []string{d.ActiveSyncURL, d.EWSAt(time.Now()), d.Provider.OutlookRedirectURL} {
		if pu, err := url.Parse(u); err == nil && pu.Host != "" {
			allowed[strings.ToLower(pu.Hostname())] = true
		}
	}
	var hosts []string
	for _, s := range a.Servers {
		hosts = append(hosts, strings.ToLower(s.Host))
	}
	for _, u := range a.URLs {
		if pu, err := url.Parse(u); err == nil {
			hosts = append(hosts, strings.ToLower(pu.Hostname()))
		}
	}
	for _, h := range hosts {
		if config.IsConsumerHost(h) {
			return "the answer names the consumer Outlook.com host " + h
		}
	}
	for _, h := range hosts {
		if !allowed[h] {
			return "the answer names " + h + ", which the config does not"
		}
	}
	return ""
}
