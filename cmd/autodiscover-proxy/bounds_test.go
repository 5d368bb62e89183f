package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/clientcheck"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
)

// The bounds that hold by construction, tried against the built binary
// over its real listeners: what one request can cost, what slow readers
// can hold, whose answer an upstream request can reach, what a full
// client table does to the next client, what one IPv6 /64 gets, and how
// an ambiguously framed request ends its connection. Every loop is
// bounded in count; waits are bounded only from above.

// procStat is what /proc says of a process: CPU time, resident memory
// and its peak.
type procStat struct {
	cpu      time.Duration
	rss, hwm int64
}

func readProc(t *testing.T, pid int) procStat {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses:
	// utime and stime are the 12th and 13th of them, in clock ticks (100 a
	// second on Linux).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	ps := procStat{cpu: time.Duration(ut+st) * 10 * time.Millisecond}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			ps.rss = kb << 10
		case "VmHWM":
			ps.hwm = kb << 10
		}
	}
	return ps
}

const mib = 1 << 20

// everySetting is the setting names Exchange defines (the answer's
// largest entries are for these), then 16 undefined names of 64 bytes,
// the most the service answers.
func everySetting() []string {
	names := slices.Clone(xmlschema.SettingNames)
	for i := range 16 {
		names = append(names, strings.Repeat("X", 62)+fmt.Sprintf("%02d", i))
	}
	return names
}

// worstSOAP is the largest SOAP answer within the body cap: 100 users
// with 64-byte local parts, every setting.
func worstSOAP() string {
	var users []string
	for i := range 100 {
		users = append(users, strings.Repeat("u", 62)+fmt.Sprintf("%02d", i)+"@custom.example")
	}
	return clientcheck.SOAPRequest("GetUserSettings", users, everySetting()...)
}

// boundsConfig serves a Microsoft 365 domain through the fake upstream
// (relay_auth on), an Exchange domain with every protocol, and trusts
// loopback as a proxy, so that the test can name clients.
func boundsConfig(t *testing.T, up *fakeUpstream, extra string) string {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	y := "trusted_proxies: [127.0.0.1/32, '::1/128']\n" + extra +
		"domains:\n  - name: contoso.com\n    provider: microsoft365\n" +
		fmt.Sprintf("    upstream: {url: '%s/autodiscover/autodiscover.xml', relay_auth: true}\n", up.URL) +
		"  - name: custom.example\n    provider: exchange\n    exchange_host: mail.custom.example\n"
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestHostileBounds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	up := startFakeUpstream(t)
	r := startBinary(t, []string{"SSL_CERT_FILE=" + up.caFile}, "-config",
		boundsConfig(t, up, "limits: {relay_per_minute: 1000000, relay_per_account_per_hour: 100000}\n"))
	tlsConf := &tls.Config{InsecureSkipVerify: true}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	do := func(method, url, host, body string, header ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Host = host
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	https := "https://" + r.https

	t.Run("the worst request within the body cap, per endpoint", func(t *testing.T) {
		long := strings.Repeat("a", 64) + "@custom.example"
		var repeated, users []string
		for range 900 {
			repeated = append(repeated, "UserDN", "CasVersion")
		}
		for i := range 100 {
			users = append(users, fmt.Sprintf("u%d@custom.example", i))
		}
		var domains []string
		for range 100 {
			domains = append(domains, "custom.example")
		}
		// A POX request at the body cap, of the elements that cost most to
		// parse: empty ones.
		poxWorst := strings.Replace(fmt.Sprintf(poxRequest, long), "<Request>", "<Request>"+strings.Repeat("<b/>", (64<<10-600)/4), 1)
		for _, c := range []struct {
			name, method, path, body string
		}{
			{"SOAP: 100 users, every setting", "POST", "/autodiscover/autodiscover.svc", worstSOAP()},
			{"SOAP: 100 users, 1,800 repeated names", "POST", "/autodiscover/autodiscover.svc", clientcheck.SOAPRequest("GetUserSettings", users, repeated...)},
			{"SOAP: every distinct name", "POST", "/autodiscover/autodiscover.svc", clientcheck.SOAPRequest("GetUserSettings", []string{long}, everySetting()...)},
			{"SOAP: 100 domains, every setting", "POST", "/autodiscover/autodiscover.svc", clientcheck.SOAPRequest("GetDomainSettings", domains, everySetting()...)},
			{"POX: 64 KiB of empty elements", "POST", "/autodiscover/autodiscover.xml", poxWorst},
			{"POX: upstream answer", "POST", "/autodiscover/autodiscover.xml", fmt.Sprintf(poxRequest, "big1@contoso.com")},
			{"autoconfig", "GET", "/mail/config-v1.1.xml?emailaddress=" + long, ""},
			{"JSON v2", "GET", "/autodiscover/autodiscover.json?Protocol=ActiveSync&Email=" + long, ""},
			{"setup page", "GET", "/setup?email=" + long, ""},
			{"Apple profile", "GET", "/mobileconfig?email=" + long, ""},
		} {
			if len(c.body) > 64<<10 {
				t.Fatalf("%s: the request is %d bytes, over the body cap", c.name, len(c.body))
			}
			before := readProc(t, r.pid)
			resp, body := do(c.method, https+c.path, "autodiscover.custom.example", c.body, "Content-Type", "text/xml")
			after := readProc(t, r.pid)
			growth, cpu := after.hwm-before.rss, after.cpu-before.cpu
			t.Logf("%-34s request %6d B  answer %8d B (HTTP %d)  RSS growth at most %5.1f MiB  CPU %v",
				c.name, len(c.body)+len(c.path), len(body), resp.StatusCode, float64(max(growth, 0))/mib, cpu)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: HTTP %d, want the answer", c.name, resp.StatusCode)
			}
			if len(body) > 4*mib {
				t.Errorf("%s: the answer is %d bytes, over 4 MiB", c.name, len(body))
			}
			if growth > 64*mib {
				t.Errorf("%s: the process grew by %d MiB, over 64 MiB", c.name, growth/mib)
			}
			if cpu > 2*time.Second {
				t.Errorf("%s: %v of CPU, over 2 s", c.name, cpu)
			}
		}
	})

	t.Run("100 slow readers of the largest answers, and ordinary traffic", func(t *testing.T) {
		req := worstSOAP()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		// Readers that take nothing: a receive buffer of 4 KiB, set before
		// the connection is made so that the window stays that small.
		slow := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var err error
			rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
			return err
		}}
		for range 100 {
			raw, err := slow.Dial("tcp", r.https)
			if err != nil {
				t.Fatal(err)
			}
			c := tls.Client(raw, tlsConf)
			conns = append(conns, c)
			fmt.Fprintf(c, "POST /autodiscover/autodiscover.svc HTTP/1.1\r\nHost: autodiscover.custom.example\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s", len(req), req)
		}
		// Ordinary traffic while they hang: every request answered.
		for i := range 20 {
			resp, body := do("POST", https+"/autodiscover/autodiscover.xml", "autodiscover.custom.example", fmt.Sprintf(poxRequest, fmt.Sprintf("user%d@custom.example", i)), "Content-Type", "text/xml")
			if resp.StatusCode != 200 || !strings.Contains(string(body), "mail.custom.example") {
				t.Fatalf("an ordinary POX request with 100 slow readers: HTTP %d\n%.300s", resp.StatusCode, body)
			}
			if resp, _ := do("GET", https+"/mail/config-v1.1.xml?emailaddress=jane@custom.example", "autoconfig.custom.example", ""); resp.StatusCode != 200 {
				t.Fatalf("an ordinary autoconfig request with 100 slow readers: HTTP %d", resp.StatusCode)
			}
		}
		// What the slow readers got: the answer, or 503 past the budget.
		status := map[string]int{}
		for _, c := range conns {
			c.SetReadDeadline(time.Now().Add(time.Minute))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				status["no answer: "+err.Error()]++
				continue
			}
			status[strings.TrimSpace(line)]++
		}
		ps := readProc(t, r.pid)
		t.Logf("slow readers' status lines: %v; peak RSS %.1f MiB", status, float64(ps.hwm)/mib)
		if ps.hwm > 128*mib {
			t.Errorf("peak RSS %d MiB with 100 slow readers, over 128 MiB", ps.hwm/mib)
		}
		if status["HTTP/1.1 200 OK"] == 0 {
			t.Error("no slow reader got its answer")
		}
		for line := range status {
			if line != "HTTP/1.1 200 OK" && line != "HTTP/1.1 503 Service Unavailable" {
				t.Errorf("a slow reader got %q, want its answer or 503 past the budget", line)
			}
		}
	})

	t.Run("an upstream request holds one address, built by us", func(t *testing.T) {
		dtd := `<?xml version="1.0"?><!DOCTYPE Autodiscover [<!ENTITY e "x">]><!-- c -->` +
			`<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request>` +
			`<EMailAddress>victim@contoso.com</EMailAddress><EMailAddress>attacker@contoso.com</EMailAddress>` +
			`<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
		_, body := do("POST", https+"/autodiscover/autodiscover.xml", "autodiscover.contoso.com", dtd, "Content-Type", "text/xml")
		if !strings.Contains(string(body), "<ErrorCode>600</ErrorCode>") {
			t.Errorf("two addresses and a DTD: not error 600\n%s", body)
		}
		one := strings.Replace(dtd, "<EMailAddress>attacker@contoso.com</EMailAddress>", "<Junk>attacker@contoso.com</Junk>", 1)
		addressed := regexp.MustCompile(`<AutoDiscoverSMTPAddress>([^<]*)<`)
		for _, ask := range []string{"victim@contoso.com", "attacker@contoso.com"} {
			req := strings.Replace(one, "victim@contoso.com", ask, 1)
			if ask == "attacker@contoso.com" {
				req = fmt.Sprintf(poxRequest, ask)
			}
			_, body := do("POST", https+"/autodiscover/autodiscover.xml", "autodiscover.contoso.com", req, "Content-Type", "text/xml")
			for _, m := range addressed.FindAllStringSubmatch(string(body), -1) {
				if m[1] != ask {
					t.Errorf("asked about %s, the answer names %s", ask, m[1])
				}
			}
		}
		up.mu.Lock()
		defer up.mu.Unlock()
		for _, b := range up.bodies {
			if strings.Contains(b, "<!") || strings.Contains(b, "Junk") || strings.Count(b, "<EMailAddress>") != 1 {
				t.Errorf("the upstream was sent a client's own markup:\n%s", b)
			}
		}
	})

	t.Run("12,000 clients, then a new one is served within its own limit", func(t *testing.T) {
		// Through the plain listener as a trusted proxy sends them.
		pc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
		signIn := func(client, auth, addr string) int {
			req, _ := http.NewRequest("POST", "http://"+r.http+"/autodiscover/autodiscover.xml", strings.NewReader(fmt.Sprintf(poxRequest, addr)))
			req.Host = "autodiscover.contoso.com"
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-For", client)
			req.Header.Set("Authorization", auth)
			resp, err := pc.Do(req)
			if err != nil {
				t.Error(err)
				return 0
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		const clients, workers = 12000, 8
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < clients; i += workers {
					signIn(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), "Basic flood", fmt.Sprintf("user%d@contoso.com", i%300))
				}
			}()
		}
		wg.Wait()
		for i := range 30 {
			signIn("198.51.100.77", fmt.Sprintf("Basic newcomer%d", i), "newcomer@contoso.com")
		}
		auth, _ := up.counts()
		newcomer := 0
		for k := range auth {
			if strings.HasPrefix(k, "Basic newcomer") {
				newcomer++
			}
		}
		t.Logf("%d sign-ins from %d clients relayed; then the new client had %d of 30 relayed", auth["Basic flood"], clients, newcomer)
		if auth["Basic flood"] != clients {
			t.Errorf("%d of %d first sign-ins from distinct clients were relayed", auth["Basic flood"], clients)
		}
		if newcomer != 20 {
			t.Errorf("a new client after %d others had %d sign-ins relayed, want its own limit of 20", clients, newcomer)
		}
	})

	t.Run("Content-Length and Transfer-Encoding: the connection is closed", func(t *testing.T) {
		for _, l := range []struct {
			name, addr string
			tls        bool
		}{{"https", r.https, true}, {"http", r.http, false}} {
			c, err := net.Dial("tcp", l.addr)
			if err != nil {
				t.Fatal(err)
			}
			if l.tls {
				c = tls.Client(c, tlsConf)
			}
			smuggled := "GET /mail/config-v1.1.xml?emailaddress=jane@custom.example HTTP/1.1\r\nHost: autoconfig.custom.example\r\n\r\n"
			fmt.Fprintf(c, "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.custom.example\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s", 5+len(smuggled), smuggled)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", l.name, err)
			}
			io.Copy(io.Discard, resp.Body)
			if !resp.Close {
				t.Errorf("%s: the answer does not close the connection", l.name)
			}
			c.SetReadDeadline(time.Now().Add(time.Minute))
			if second, err := http.ReadResponse(br, nil); err == nil {
				t.Errorf("%s: what followed the body was answered as a second request: %s", l.name, second.Status)
			}
			c.Close()
		}
	})
}

// A rotating IPv6 /64 is one client. The test runs itself again inside a
// network namespace of its own whose loopback holds 2001:db8:64::/48
// (a local route, and non-local binds allowed), so that clients can come
// from any address in it; nothing outside the namespace changes.
func TestHostileRotatingIPv6(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if os.Getenv("AUTODISCOVER_IN_NETNS") == "" {
		args := []string{"--net"}
		if os.Geteuid() != 0 {
			args = []string{"--user", "--map-root-user", "--net"}
		}
		script := `ip link set lo up && ip -6 route add local 2001:db8:64::/48 dev lo && sysctl -qw net.ipv6.ip_nonlocal_bind=1 && exec "$@"`
		cmd := exec.Command("unshare", append(args, "--", "sh", "-c", script, "sh", os.Args[0], "-test.run=^TestHostileRotatingIPv6$", "-test.v", "-test.count=1")...)
		cmd.Env = append(os.Environ(), "AUTODISCOVER_IN_NETNS=1")
		out, err := cmd.CombinedOutput()
		if err != nil && strings.Contains(string(out), "unshare") || err != nil && !strings.Contains(string(out), "--- ") {
			if os.Getenv("CI") != "" {
				t.Fatalf("a network namespace could not be made (CI must run this test): %v\n%s", err, out)
			}
			t.Skipf("skipped: a network namespace could not be made here (unshare --net, ip, sysctl): %v\n%s", err, out)
		}
		t.Logf("inside the namespace:\n%s", out)
		if err != nil {
			t.Fatal("the test failed inside its network namespace")
		}
		return
	}

	up := startFakeUpstream(t)
	r := startBinary(t, []string{"SSL_CERT_FILE=" + up.caFile}, "-config", boundsConfig(t, up, ""), "-https", "[::1]:0", "-http", "[::1]:0")
	from := func(src string) *http.Client {
		ip := net.ParseIP(src)
		if ip == nil {
			t.Fatalf("%s is not an address", src)
		}
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
		}}
	}
	page := func(src string) int {
		req, _ := http.NewRequest("GET", "https://"+r.https+"/setup?email=jane%40custom.example", nil)
		req.Host = "autodiscover.custom.example"
		resp, err := from(src).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	served := 0
	start := time.Now()
	for i := range 60 {
		if page(fmt.Sprintf("2001:db8:64:0:%x::%x", i*7919&0xffff, i+1)) == 200 {
			served++
		}
	}
	// The one client's 30, and what its bucket refilled meanwhile (one
	// page every 2 s): a slow machine is no failure, keying by address is.
	refilled := int(time.Since(start) / (2 * time.Second))
	t.Logf("60 setup pages from 60 addresses of one /64: %d served (%d refilled meanwhile)", served, refilled)
	if served < 30 || served > 30+refilled || 30+refilled >= 60 {
		t.Errorf("60 addresses of one /64 got %d setup pages, want the one client's 30 (+%d refilled)", served, refilled)
	}
	if code := page("2001:db8:64:1::1"); code != 200 {
		t.Errorf("a client in another /64: HTTP %d", code)
	}

	for i := range 40 {
		req, _ := http.NewRequest("POST", "https://"+r.https+"/autodiscover/autodiscover.xml", strings.NewReader(fmt.Sprintf(poxRequest, fmt.Sprintf("user%d@contoso.com", i))))
		req.Host = "autodiscover.contoso.com"
		req.Header.Set("Authorization", fmt.Sprintf("Basic rotating%d", i))
		resp, err := from(fmt.Sprintf("2001:db8:64:2::%x", i+1)).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	auth, _ := up.counts()
	t.Logf("40 sign-ins from 40 addresses of one /64: %d relayed", len(auth))
	if len(auth) != 20 {
		t.Errorf("40 sign-ins from one /64 had %d relayed, want the one client's 20", len(auth))
	}
}
