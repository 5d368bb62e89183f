package main

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/autodiscover-proxy/autodiscover-proxy/clientcheck"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

// The abuse paths, tried the way an attacker reaches them: over the real
// listeners of the built binary, in its own process, against a fake
// upstream on loopback. Every loop is bounded in count; waits are bounded
// only from above.

// fakeUpstream is an upstream autodiscover service on loopback TLS. It
// answers by the address's local part: big* a 200 KiB answer, disguised*
// consumer hosts in disguise, anything else an answer naming the
// business hosts; with "Basic right" a different DisplayName (what a
// password oracle would show). It counts what it is sent.
type fakeUpstream struct {
	*httptest.Server
	caFile string
	mu     sync.Mutex
	auth   map[string]int // Authorization values received
	hits   map[string]int // requests per address
	bodies []string       // every request body received
}

var emailElement = regexp.MustCompile(`<EMailAddress>([^<]*)</EMailAddress>`)

func startFakeUpstream(t *testing.T) *fakeUpstream {
	f := &fakeUpstream{auth: map[string]int{}, hits: map[string]int{}}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := emailElement.FindSubmatch(body)
		if m == nil {
			http.Error(w, "no address", http.StatusBadRequest)
			return
		}
		addr := string(m[1])
		f.mu.Lock()
		f.hits[addr]++
		f.bodies = append(f.bodies, string(body))
		if a := r.Header.Get("Authorization"); a != "" {
			f.auth[a]++
		}
		f.mu.Unlock()
		name, imap := "Jane", "outlook.office365.com"
		switch {
		case strings.HasPrefix(addr, "big"):
			name = strings.Repeat("J", 200<<10) // under the 256 KiB an upstream answer may have
		case strings.HasPrefix(addr, "disguised"):
			imap = "ｉｍａｐ-mail.outlook.com</Server><Server>pop-mail.<b/>outlook.com"
		}
		if r.Header.Get("Authorization") == "Basic right" {
			name = "Jane (signed in)"
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"><User><DisplayName>%s</DisplayName><AutoDiscoverSMTPAddress>%s</AutoDiscoverSMTPAddress></User><Account><AccountType>email</AccountType><Action>settings</Action>`+
			`<Protocol><Type>IMAP</Type><Server>%s</Server><Port>993</Port><LoginName>%s</LoginName><SPA>off</SPA><SSL>on</SSL><Encryption>SSL</Encryption></Protocol>`+
			`<Protocol><Type>SMTP</Type><Server>smtp-mail%%2eoutlook.com</Server><Port>587</Port><LoginName>%s</LoginName><SPA>off</SPA><SSL>on</SSL><Encryption>TLS</Encryption></Protocol>`+
			`</Account></Response></Autodiscover>`, name, addr, imap, addr, addr)
	}))
	t.Cleanup(f.Close)
	f.caFile = filepath.Join(t.TempDir(), "upstream-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
	if err := os.WriteFile(f.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeUpstream) counts() (auth map[string]int, hits map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, h := map[string]int{}, map[string]int{}
	for k, v := range f.auth {
		a[k] = v
	}
	for k, v := range f.hits {
		h[k] = v
	}
	return a, h
}

// startBinary builds the binary and runs "serve args..." in its own
// process with env added, on loopback ports the kernel chooses; it is
// stopped with SIGTERM when the test ends.
func startBinary(t *testing.T, env []string, args ...string) *running {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "autodiscover-proxy")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"serve", "-https", "127.0.0.1:0", "-http", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	r := &running{stderr: stderr, pid: cmd.Process.Pid}
	var once sync.Once
	r.stop = func() int {
		code := 0
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				if err != nil {
					code = 1
				}
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				code = -1
			}
		})
		return code
	}
	t.Cleanup(func() {
		if c := r.stop(); c != 0 {
			t.Errorf("serve exited %d; stderr:\n%s", c, stderr)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if r.announced(stdout.String()) {
			return r
		}
		select {
		case err := <-exited:
			t.Fatalf("serve exited (%v) before serving; stderr:\n%s", err, stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve announced nothing in 30s; stdout:\n%s\nstderr:\n%s", stdout, stderr)
	return nil
}

// errorStamp is what differs between two error answers (their time and id).
var errorStamp = regexp.MustCompile(`Time="[^"]*"|Id="\d+"`)

func TestHostileRealListeners(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	up := startFakeUpstream(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	upstream := func(relay bool) string {
		return fmt.Sprintf("    upstream: {url: '%s/autodiscover/autodiscover.xml', relay_auth: %v}\n", up.URL, relay)
	}
	os.WriteFile(cfg, []byte("limits: {relay_per_client_per_hour: 5, relay_per_account_per_hour: 100, upstream_cache_mb: 1, pages_per_client_per_minute: 1}\n"+
		"domains:\n  - name: contoso.com\n    provider: microsoft365\n"+upstream(false)+
		"  - name: fabrikam.com\n    provider: microsoft365\n"+upstream(true)), 0o600)
	r := startBinary(t, []string{"SSL_CERT_FILE=" + up.caFile}, "-config", cfg)
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	pox := func(addr, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "https://"+r.https+"/autodiscover/autodiscover.xml", strings.NewReader(fmt.Sprintf(poxRequest, addr)))
		req.Host = "autodiscover." + addr[strings.IndexByte(addr, '@')+1:]
		req.Header.Set("Content-Type", "text/xml")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	t.Run("relay_auth false: no credential leaves, no oracle", func(t *testing.T) {
		var first string
		for i := range 20 {
			auth := "Basic right"
			if i%2 == 1 {
				auth = fmt.Sprintf("Basic wrong%d", i)
			}
			code, body := pox("jane@contoso.com", auth)
			body = errorStamp.ReplaceAllString(body, "")
			if i == 0 {
				first = body
			} else if code != 200 || body != first {
				t.Fatalf("answer %d (%d) differs from the first: the password changes the answer\n%s\n---\n%s", i, code, body, first)
			}
		}
		if auth, _ := up.counts(); len(auth) != 0 {
			t.Errorf("the upstream got Authorization values %v with relay_auth false", auth)
		}
	})

	t.Run("relay_auth true: credentials relayed within the per-client bucket", func(t *testing.T) {
		for i := range 30 {
			if code, _ := pox(fmt.Sprintf("user%d@fabrikam.com", i), fmt.Sprintf("Basic guess%d", i)); code != 200 {
				t.Fatalf("attempt %d: %d", i, code)
			}
		}
		auth, _ := up.counts()
		if len(auth) != 5 {
			t.Errorf("one client had %d distinct credentials relayed, want its burst of 5: %v", len(auth), auth)
		}
	})

	t.Run("the upstream cache is bounded in bytes", func(t *testing.T) {
		// 12 answers of 200 KiB against a 1 MiB cache.
		for i := range 12 {
			if code, body := pox(fmt.Sprintf("big%d@contoso.com", i), ""); code != 200 || !strings.Contains(body, "JJJJ") {
				t.Fatalf("answer %d: %d", i, code)
			}
		}
		_, before := up.counts()
		pox("big11@contoso.com", "") // the newest: still cached
		pox("big0@contoso.com", "")  // the oldest: gone, asked again
		_, after := up.counts()
		if after["big11@contoso.com"] != before["big11@contoso.com"] {
			t.Error("the newest answer was not served from the cache")
		}
		if after["big0@contoso.com"] != before["big0@contoso.com"]+1 {
			t.Error("the oldest answer is still cached: 12 x 200 KiB kept in a 1 MiB budget")
		}
	})

	t.Run("consumer hosts in disguise never reach a client", func(t *testing.T) {
		code, body := pox("disguised@contoso.com", "")
		p, err := clientcheck.ReadPOX("text/xml; charset=utf-8", []byte(body))
		if code != 200 || err != nil {
			t.Fatalf("%d %v\n%s", code, err, body)
		}
		if config.MentionsConsumerHost(body) {
			t.Errorf("the answer names a consumer host:\n%s", body)
		}
		for _, s := range p.Servers {
			if config.IsConsumerHost(s.Host) {
				t.Errorf("a client reads %s", s.Host)
			}
		}
	})

	setupURL := "https://" + r.https + "/setup?email=jane%40contoso.com"
	t.Run("setup pages: a per-client limit with a page that says to wait", func(t *testing.T) {
		page := func() (*http.Response, string) {
			req, _ := http.NewRequest("GET", setupURL, nil)
			req.Host = "autodiscover.contoso.com"
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp, string(b)
		}
		if resp, _ := page(); resp.StatusCode != 200 {
			t.Fatalf("first page: %d", resp.StatusCode)
		}
		resp, body := page()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "</html>") {
			t.Errorf("past the limit: %d, Retry-After %q, %s:\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), body)
		}
	})

	t.Run("HTTP/2 rapid reset renders no page past the limit", func(t *testing.T) {
		start := time.Now()
		conn, err := tls.Dial("tcp", r.https, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, ServerName: "autodiscover.contoso.com"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if conn.ConnectionState().NegotiatedProtocol != "h2" {
			t.Fatalf("ALPN %q, want h2", conn.ConnectionState().NegotiatedProtocol)
		}
		io.WriteString(conn, http2.ClientPreface)
		fr := http2.NewFramer(conn, conn)
		fr.WriteSettings()
		// The server's frames, read until the answer to our PING, or until
		// the server closes the connection (its answer to a flood of
		// resets): the server handles a connection's frames in order, so
		// by then it has started a handler for every stream that reached
		// one.
		pong := make(chan struct{})
		go func() {
			defer close(pong)
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					return
				}
				if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
					return
				}
			}
		}()
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		const streams = 1000
		for i := range streams {
			hb.Reset()
			for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "autodiscover.contoso.com"},
				{":path", "/setup?email=u" + strconv.Itoa(i) + "%40contoso.com"}} {
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			id := uint32(2*i + 1)
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
				break // the server may close the connection: fine
			}
			if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
				break
			}
		}
		fr.WritePing(false, [8]byte{1}) // fails if the server has closed the connection: fine
		select {
		case <-pong:
		case <-time.After(time.Minute):
			t.Fatal("no answer to PING after the flood")
		}
		conn.Close()
		// Pages rendered (outcome settings) since the start, at most: the
		// one before, and what the bucket refilled since (one a minute).
		allowed := 1 + 1 + int(time.Since(start)/time.Minute)
		// Every handler started has finished: the count is final.
		waitFor(t, "the flood's handlers to finish", func() bool { return metricValue(t, r.admin, "autodiscover_requests_in_flight") == 0 })
		last := setupCount(t, r.admin, "")
		if last <= 2 {
			t.Fatalf("the flood did not reach the handlers (%d setup requests): this test could not fail", last)
		}
		rendered := setupCount(t, r.admin, "settings")
		t.Logf("%d streams opened and reset; %d setup requests handled, %d pages rendered", streams, last, rendered)
		if rendered > allowed {
			t.Errorf("%d setup pages rendered for one client in %s, the limit allows %d", rendered, time.Since(start).Round(time.Second), allowed)
		}
		// And the service still answers at once.
		if code, _ := pox("jane@contoso.com", ""); code != 200 {
			t.Errorf("after the reset flood: %d", code)
		}
	})

	t.Run("silent connections past the cap: new clients are still served", func(t *testing.T) {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for range 600 { // the default cap is 512
			c, err := net.DialTimeout("tcp", r.http, 10*time.Second)
			if err != nil {
				break
			}
			held = append(held, c)
		}
		c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
		if code, _ := get(t, c, "http://"+r.http+"/mail/config-v1.1.xml?emailaddress=jane@contoso.com"); code != 200 {
			t.Errorf("a new client with %d silent connections open: %d", len(held), code)
		}
	})
}

// metricValue is an unlabelled metric's value, read from the admin
// listener.
func metricValue(t *testing.T, admin, name string) float64 {
	t.Helper()
	_, body := get(t, http.DefaultClient, "http://"+admin+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("%s not in /metrics", name)
	return 0
}

// setupCount is autodiscover_requests_total for dialect setup with the
// given outcome (every outcome when empty), read from the admin listener.
func setupCount(t *testing.T, admin, outcome string) int {
	t.Helper()
	_, body := get(t, http.DefaultClient, "http://"+admin+"/metrics")
	n := 0
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "autodiscover_requests_total{") || !strings.Contains(line, `dialect="setup"`) ||
			outcome != "" && !strings.Contains(line, `outcome="`+outcome+`"`) {
			continue
		}
		v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		n += int(v)
	}
	return n
}
