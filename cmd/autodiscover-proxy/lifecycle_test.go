package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/internal/pgtest"
)

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func configYAML(display string) string {
	return "tls: {cert_file: cert.pem, key_file: key.pem}\ndomains:\n  - name: contoso.com\n    provider: microsoft365\n    display_name: " + display + "\n"
}

// SIGHUP reloads the config and the certificate files; a bad config is
// refused, logged and counted, and the previous one keeps serving.
func TestServeReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	pool := writeCertificate(t, dir, "autodiscover.contoso.com", "autoconfig.contoso.com")
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(configYAML("First")), 0o600)
	r := startServe(t, "-config", cfg)
	var served *x509.Certificate
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true, // each request a new handshake, to see certificate swaps
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "autoconfig.contoso.com",
			VerifyConnection: func(cs tls.ConnectionState) error { served = cs.PeerCertificates[0]; return nil }},
	}}
	url := "https://" + r.https + "/mail/config-v1.1.xml?emailaddress=a@contoso.com"
	if _, body := get(t, c, url); !strings.Contains(body, "<displayName>First</displayName>") {
		t.Fatalf("first config not served:\n%s", body)
	}
	first := served.Raw

	// New config and a certificate from a new CA (the client trusts only it), then SIGHUP.
	os.WriteFile(cfg, []byte(configYAML("Second")), 0o600)
	rotated := writeCertificate(t, dir, "autodiscover.contoso.com", "autoconfig.contoso.com")
	c.Transport.(*http.Transport).TLSClientConfig.RootCAs = rotated
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "the second config", func() bool {
		// Until the reload is done the old certificate fails against the new root.
		resp, err := c.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "<displayName>Second</displayName>")
	})
	if bytes.Equal(served.Raw, first) {
		t.Error("SIGHUP did not reload the certificate files")
	}

	// A bad config: refused, and Second keeps serving.
	os.WriteFile(cfg, []byte("domains:\n  - name: contoso.com\n    provider: microsoft365\n    smtp: {host: smtp-mail.outlook.com}\n"), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "the refusal in the log", func() bool { return strings.Contains(r.stderr.String(), "reload refused") })
	if !strings.Contains(r.stderr.String(), "smtp-mail.outlook.com is a consumer") {
		t.Errorf("refusal does not say why:\n%s", r.stderr)
	}
	if _, body := get(t, c, url); !strings.Contains(body, "<displayName>Second</displayName>") {
		t.Errorf("after a refused reload:\n%s", body)
	}
	_, metrics := get(t, http.DefaultClient, "http://"+r.admin+"/metrics")
	for _, want := range []string{`autodiscover_config_reloads_total{result="success"} 1`, `autodiscover_config_reloads_total{result="failure"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// SIGTERM (context cancel): no new connections, the request in flight gets
// its complete answer, exit 0.
func TestServeFinishesInFlightRequestsAtStop(t *testing.T) {
	r := startServe(t)
	conn, err := tls.Dial("tcp", r.https, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := strings.Replace(poxRequest, "%s", "user@example.com", 1)
	// With Expect: 100-continue the server says "100 Continue" when the
	// handler starts reading the body: from then on the request is in flight.
	fmt.Fprintf(conn, "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.example.com\r\nContent-Type: text/xml\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(body))
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("no 100 Continue: %v", err)
	}
	stopped := make(chan int, 1)
	go func() { stopped <- r.stop() }()
	waitFor(t, "shutdown to refuse new connections", func() bool {
		c, err := net.DialTimeout("tcp", r.https, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	io.WriteString(conn, body)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("in-flight request lost: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(answer, []byte("<Action>settings</Action>")) {
		t.Errorf("in-flight answer %d:\n%s", resp.StatusCode, answer)
	}
	if code := <-stopped; code != 0 {
		t.Errorf("exit status %d", code)
	}
	// The log is written out at stop: the in-flight request's line, then the last line.
	if log := r.stderr.String(); !strings.Contains(log, "msg=request dialect=pox outcome=settings") || !strings.HasSuffix(log, "msg=stopped\n") {
		t.Errorf("log at stop lacks the request line or ends otherwise:\n%s", log)
	}
}

func TestAdminEndpoints(t *testing.T) {
	r := startServe(t)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get(t, c, "https://"+r.https+"/mail/config-v1.1.xml?emailaddress=a@example.com")
	if code, body := get(t, c, "http://"+r.admin+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthz %d %q", code, body)
	}
	if code, body := get(t, c, "http://"+r.admin+"/readyz"); code != 200 {
		t.Errorf("readyz %d %q", code, body)
	}
	_, metrics := get(t, c, "http://"+r.admin+"/metrics")
	for _, want := range []string{
		`autodiscover_requests_total{dialect="autoconfig",domain="example.com",outcome="settings"} 1`,
		`autodiscover_request_duration_seconds_bucket{dialect="autoconfig"`,
		`autodiscover_certificate_expiry_timestamp_seconds{host="autodiscover.example.com"}`,
		`autodiscover_certificate_expiry_timestamp_seconds{host="autoconfig.example.com"}`,
		`autodiscover_build_info{goversion="` + runtime.Version() + `",revision=`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// /readyz is 503, naming the host, when the certificate does not cover
// every configured host.
func TestReadyzWithoutCertificateForEveryHost(t *testing.T) {
	dir := t.TempDir()
	writeCertificate(t, dir, "autodiscover.contoso.com", "autoconfig.contoso.com")
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("tls: {cert_file: cert.pem, key_file: key.pem}\ndomains:\n  - name: contoso.com\n    provider: microsoft365\n  - name: fabrikam.com\n    provider: microsoft365\n"), 0o600)
	r := startServe(t, "-config", cfg)
	code, body := get(t, http.DefaultClient, "http://"+r.admin+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "autodiscover.fabrikam.com") || strings.Contains(body, "autodiscover.contoso.com") {
		t.Errorf("readyz %d %q", code, body)
	}
}

func TestCheckConfig(t *testing.T) {
	var out, errb bytes.Buffer
	example := filepath.Join("..", "..", "deploy", "config.example.yaml")
	if code := run(context.Background(), []string{"check-config", "-config", example}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"OK, 5 domain(s)", "northwind.example: exchange", "oab        https://mail.northwind.example/OAB/", "contoso.com (aliases contoso.net): microsoft365", "imap       outlook.office365.com:993 ssl",
		"smtp       smtp.office365.com:587 starttls", "certificate hosts: autodiscover.contoso.com autoconfig.contoso.com"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("domains:\n  - name: a.com\n    provider: microsoft365\n    imap: {port: 0x10000}\n"), 0o600)
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"check-config", "-config", bad}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "bad.yaml:4: domains[0].imap.port: 65536 is not a TCP port") {
		t.Errorf("bad config: exit %d, %q", code, errb.String())
	}
	if code := run(context.Background(), []string{"check-config"}, &out, &errb); code != 2 {
		t.Errorf("no -config: exit %d", code)
	}
	if code := run(context.Background(), []string{"check-config", "-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "example:") {
		t.Errorf("-h: exit %d", code)
	}
}

// TLS 1.2+ by default; tls.min_version "1.0" lets very old clients in;
// HTTP/2 is negotiated.
func TestTLSVersionsAndHTTP2(t *testing.T) {
	dial := func(addr string, v uint16) error {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v})
		if err == nil {
			c.Close()
		}
		return err
	}
	r := startServe(t)
	if err := dial(r.https, tls.VersionTLS11); err == nil {
		t.Error("TLS 1.1 accepted by default")
	}
	if err := dial(r.https, tls.VersionTLS12); err != nil {
		t.Errorf("TLS 1.2: %v", err)
	}
	c := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get("https://" + r.https + "/mail/config-v1.1.xml?emailaddress=a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "old.yaml")
	os.WriteFile(cfg, []byte("tls: {min_version: \"1.0\"}\ndomains:\n  - name: contoso.com\n    provider: microsoft365\n"), 0o600)
	old := startServe(t, "-config", cfg)
	if err := dial(old.https, tls.VersionTLS10); err != nil {
		t.Errorf("TLS 1.0 with min_version 1.0: %v", err)
	}
}

// The profiler is off unless -pprof asks for it.
func TestPprofOffByDefault(t *testing.T) {
	r := startServe(t)
	if code, _ := get(t, http.DefaultClient, "http://"+r.admin+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof without -pprof: %d", code)
	}
	on := startServe(t, "-pprof")
	if code, body := get(t, http.DefaultClient, "http://"+on.admin+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof with -pprof: %d", code)
	}
}

// check-config refuses what serve would refuse or fail at: certificate
// files that are missing or do not match, an ACME cache it cannot write;
// and warns of a certificate that does not name every configured host.
func TestCheckConfigCertificates(t *testing.T) {
	dir := t.TempDir()
	writeCertificate(t, dir, "autodiscover.contoso.com", "autoconfig.contoso.com")
	other := filepath.Join(dir, "other")
	os.Mkdir(other, 0o700)
	writeCertificate(t, other, "autodiscover.contoso.com", "autoconfig.contoso.com")
	os.WriteFile(filepath.Join(dir, "a-file"), nil, 0o600)
	domains := "domains:\n  - name: contoso.com\n    provider: microsoft365\n"
	for _, tc := range []struct {
		name, tls string
		code      int
		want      string
	}{
		{"matching pair", "tls: {cert_file: cert.pem, key_file: key.pem}\n", 0, "OK, 1 domain(s)"},
		{"missing files", "tls: {cert_file: nope.pem, key_file: key.pem}\n", 1, "nope.pem: no such file"},
		{"key of another pair", "tls: {cert_file: cert.pem, key_file: other/key.pem}\n", 1, "private key does not match public key"},
		{"a host not named", "tls: {cert_file: cert.pem, key_file: key.pem}\ndomains:\n  - name: fabrikam.com\n    provider: microsoft365\n", 0,
			"warning: the certificate in " + filepath.Join(dir, "cert.pem") + " does not name autodiscover.fabrikam.com, autoconfig.fabrikam.com"},
		{"ACME cache writable", "tls: {acme: {email: a@contoso.com, cache_dir: " + filepath.Join(dir, "acme") + "}}\n", 0, "certificates: ACME"},
		{"ACME cache under a file", "tls: {acme: {email: a@contoso.com, cache_dir: " + filepath.Join(dir, "a-file", "acme") + "}}\n", 1, "tls.acme.cache_dir: mkdir"},
	} {
		cfg := filepath.Join(dir, "config.yaml")
		doc := tc.tls
		if !strings.Contains(doc, "domains:") {
			doc += domains
		}
		os.WriteFile(cfg, []byte(doc), 0o600)
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"check-config", "-config", cfg}, &out, &errb)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("%s: exit %d, want %d and %q:\n%s%s", tc.name, code, tc.code, tc.want, out.String(), errb.String())
		}
	}
}

// Behind a TLS-terminating ingress (no -https), the certificate files only
// sign Apple profiles: while the ingress's certificate is not issued yet
// the service starts, is ready, and serves profiles unsigned; once the
// files are there (here with SIGHUP; otherwise the watch) profiles are
// signed.
func TestIngressCertificateNotYetIssued(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("trusted_proxies: [127.0.0.1]\n"+configYAML("Contoso")), 0o600)
	r := startServe(t, "-config", cfg, "-https", "")
	if code, body := get(t, http.DefaultClient, "http://"+r.admin+"/readyz"); code != 200 {
		t.Errorf("readyz before the certificate exists: %d %s", code, body)
	}
	profile := func() []byte {
		req, _ := http.NewRequest("GET", "http://"+r.http+"/mobileconfig?email=jane@contoso.com", nil)
		req.Host = "autodiscover.contoso.com"
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("profile: HTTP %d %s", resp.StatusCode, b)
		}
		return b
	}
	if p := profile(); !bytes.HasPrefix(p, []byte("<?xml")) {
		t.Errorf("without certificate files the profile is not an unsigned plist: %.40q", p)
	}
	writeCertificate(t, dir, "autodiscover.contoso.com", "autoconfig.contoso.com")
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "a signed profile", func() bool { return bytes.HasPrefix(profile(), []byte{0x30}) }) // DER: a SEQUENCE
}

// The config follows its files without a signal: an edit in place, a new
// included file, a Kubernetes ConfigMap's symlink swap are served once
// they settle; a broken edit keeps the config in use; the hash in
// autodiscover_config_info follows.
func TestConfigFollowsItsFiles(t *testing.T) {
	answers := func(r *running, domain, want string) func() bool {
		return func() bool {
			resp, err := http.Get("http://" + r.http + "/mail/config-v1.1.xml?emailaddress=a@" + domain)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == 200 && strings.Contains(string(b), want)
		}
	}
	hash := func(r *running) string {
		_, m := get(t, http.DefaultClient, "http://"+r.admin+"/metrics")
		h := regexp.MustCompile(`autodiscover_config_info\{hash="([0-9a-f]+)"\} 1`).FindStringSubmatch(m)
		if h == nil {
			t.Fatalf("no autodiscover_config_info in /metrics")
		}
		return h[1]
	}

	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "domains.d"), 0o755)
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("include: [domains.d/*.yaml]\n"+configYAML("First")[strings.Index(configYAML("First"), "domains:"):]), 0o600)
	r := startServe(t, "-config", cfg)
	first := hash(r)

	os.WriteFile(filepath.Join(dir, "domains.d", "new.yaml"), []byte("domains:\n  - {name: new.example, provider: microsoft365, display_name: Newcomer}\n"), 0o600)
	waitFor(t, "a new included file to be served", answers(r, "new.example", "Newcomer"))
	os.WriteFile(cfg, []byte("include: [domains.d/*.yaml]\n"+configYAML("Second")[strings.Index(configYAML("Second"), "domains:"):]), 0o600)
	waitFor(t, "an edit in place to be served", answers(r, "contoso.com", "<displayName>Second</displayName>"))
	if hash(r) == first {
		t.Error("autodiscover_config_info's hash did not change")
	}
	os.WriteFile(filepath.Join(dir, "domains.d", "new.yaml"), []byte("domains:\n  - {name: new.example, provider: microsft365}\n"), 0o600)
	waitFor(t, "the broken edit to be refused", func() bool { return strings.Contains(r.stderr.String(), "reload refused") })
	if !answers(r, "new.example", "Newcomer")() {
		t.Error("a broken included file replaced the config in use")
	}

	// A ConfigMap as kubelet mounts it: config.yaml -> ..data/config.yaml,
	// ..data -> a timestamped directory, swapped by renaming a new link.
	cm := t.TempDir()
	version := func(name, display string) {
		os.Mkdir(filepath.Join(cm, name), 0o755)
		os.WriteFile(filepath.Join(cm, name, "config.yaml"), []byte(configYAML(display)[strings.Index(configYAML(display), "domains:"):]), 0o644)
	}
	version("..2026_12_02_a", "Mounted")
	os.Symlink("..2026_12_02_a", filepath.Join(cm, "..data"))
	os.Symlink("..data/config.yaml", filepath.Join(cm, "config.yaml"))
	r2 := startServe(t, "-config", filepath.Join(cm, "config.yaml"))
	if !answers(r2, "contoso.com", "Mounted")() {
		t.Fatal("the mounted config is not served")
	}
	version("..2026_12_02_b", "Swapped")
	os.Symlink("..2026_12_02_b", filepath.Join(cm, "..data_tmp"))
	os.Rename(filepath.Join(cm, "..data_tmp"), filepath.Join(cm, "..data"))
	waitFor(t, "the ConfigMap's new version to be served", answers(r2, "contoso.com", "Swapped"))
}

// tls.acme.store: postgres: check-config reaches the store (and says how
// to fix one it cannot reach); serve serves a certificate that another
// replica put there, and /readyz says the store is reachable.
func TestCertificateStoreInPostgres(t *testing.T) {
	stopStore := pgtest.Setenv(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("tls: {acme: {store: postgres, directory_url: 'https://127.0.0.1:1/directory'}}\n"+configYAML("Fleet")[strings.Index(configYAML("Fleet"), "domains:"):]), 0o600)
	if code, out, errs := runCmd("check-config", "-config", cfg); code != 0 {
		t.Fatalf("check-config with a reachable store: exit %d\n%s%s", code, out, errs)
	}

	// What another replica ordered, in the store.
	c := storeCertificate(t, "autodiscover.contoso.com", "autoconfig.contoso.com")

	r := startServe(t, "-config", cfg)
	code, body := get(t, http.DefaultClient, "http://"+r.admin+"/readyz")
	if code != 200 || !strings.Contains(body, "certificate store: reachable") {
		t.Errorf("readyz: %d %s", code, body)
	}
	conn, err := tls.Dial("tcp", r.https, &tls.Config{InsecureSkipVerify: true, ServerName: "autodiscover.contoso.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !conn.ConnectionState().PeerCertificates[0].Equal(c.Leaf) {
		t.Error("serve does not serve the certificate in the shared store")
	}
	conn.Close()

	// The store goes away: the certificates in memory are still served,
	// and the replica stays ready, saying the store is unreachable.
	stopStore()
	conn, err = tls.Dial("tcp", r.https, &tls.Config{InsecureSkipVerify: true, ServerName: "autodiscover.contoso.com"})
	if err != nil {
		t.Fatalf("a handshake once the store is gone: %v", err)
	}
	if !conn.ConnectionState().PeerCertificates[0].Equal(c.Leaf) {
		t.Error("once the store is gone, another certificate is served")
	}
	conn.Close()
	code, body = get(t, http.DefaultClient, "http://"+r.admin+"/readyz")
	if code != 200 || !strings.Contains(body, "certificate store: unreachable") {
		t.Errorf("readyz with the store gone: %d %s", code, body)
	}

	t.Setenv("PGHOST", filepath.Join(dir, "no-such-socket-dir"))
	if code, _, errs := runCmd("check-config", "-config", cfg); code != 1 || !strings.Contains(errs, "tls.acme.store: postgres") || !strings.Contains(errs, "PGHOST") {
		t.Errorf("check-config with an unreachable store: exit %d\n%s", code, errs)
	}
}

// A host whose DNS does not point anywhere is not ordered: its state is
// waiting_dns, in the log, in /metrics (every state present) and in
// doctor -admin.
func TestCertificateStates(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("tls: {acme: {cache_dir: acme, directory_url: 'https://127.0.0.1:1/directory'}}\n"+
		"domains:\n  - {name: customer.invalid, provider: microsoft365}\n"), 0o600)
	r := startServe(t, "-config", cfg)
	waitFor(t, "both hosts to wait for DNS", func() bool {
		_, m := get(t, http.DefaultClient, "http://"+r.admin+"/metrics")
		return strings.Contains(m, `autodiscover_certificate_hosts{state="waiting_dns"} 2`)
	})
	_, m := get(t, http.DefaultClient, "http://"+r.admin+"/metrics")
	for _, st := range []string{"issuing", "issued", "failing"} {
		if !strings.Contains(m, `autodiscover_certificate_hosts{state="`+st+`"} 0`) {
			t.Errorf("/metrics lacks the %s state at 0", st)
		}
	}
	waitFor(t, "the log to tell the state change", func() bool { return strings.Contains(r.stderr.String(), "state=waiting_dns") })
	code, out, _ := runCmd("doctor", "-config", cfg, "-skip-dns", "-skip-live", "-hosts", "../../doctor/testdata/hosts-clean", "-admin", r.admin)
	if code != 0 || !strings.Contains(out, "WARN  certificates  autodiscover.customer.invalid: not ordered") {
		t.Errorf("doctor -admin: exit %d\n%s", code, out)
	}
}
