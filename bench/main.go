// Command bench measures autodiscover-proxy against the limit of its HTTP
// stack on this machine, on loopback only, in a few minutes:
//
//   - our server and, as the reference, a bare net/http server answering
//     every request with a fixed body of the same size as ours, both driven
//     by wrk, in turn, for POX, JSON and autoconfig: over HTTPS with a new
//     connection (and TLS handshake) per request, as mail clients set up
//     an account; and on keep-alive connections over HTTPS and HTTP;
//   - for each row, both servers' p50/p99 latency at half of our maximum
//     rate, and our allocations per request (from our /metrics);
//   - our peak RSS after all of that;
//   - new TLS handshakes per second (ECDSA and RSA certificates) against
//     the reference's HTTPS listener;
//   - loading a 100,000-domain config in the real binary (time, peak RSS).
//
// It prints a Markdown table and exits 1 when a target is missed. Run it
// with bench/run, which installs wrk first.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/clientcheck"
	"github.com/autodiscover-proxy/autodiscover-proxy/internal/genconfig"
)

// Targets.
const (
	targetNewConnRatio   = 0.95 // the clients' pattern: the handshake dominates
	targetKeepAliveRatio = 0.75
	targetHandshakeRatio = 0.95
	targetServeRSSMB     = 64 // peak RSS through every request row, one-domain config
	targetLoadSeconds    = 5.0
	targetLoadRSSMB      = 300
)

const domain = "bench.example"

var (
	duration    = flag.Duration("duration", 2*time.Second, "length of each wrk run and handshake run")
	rounds      = flag.Int("rounds", 7, "runs per server and row, taken in turn; medians are reported")
	connections = flag.Int("connections", 64, "wrk connections")
	only        = flag.String("only", "", "measure only the request rows whose name contains this, or (\"abuse\", \"fleet\") only the abuse or fleet figures; no targets are judged")
	reference   = flag.String("reference", "", "internal: run as the reference server with this sizes spec")
	refCert     = flag.String("cert", "", "internal: reference certificate file")
	refKey      = flag.String("key", "", "internal: reference key file")
)

func main() {
	flag.Parse()
	if *reference != "" {
		runReference(*reference, *refCert, *refKey)
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
}

// row is one measured comparison.
type row struct {
	name          string
	ours, ref     result // median runs at the maximum rate
	ratio, target float64
	// Latency at half of our maximum rate, for both servers.
	halfRate          float64
	oursHalf, refHalf result
	allocs            float64 // ours, per request; 0 where not measured
}

type result struct {
	rps          float64
	requests     int64
	p50, p99     string
	socketErrors string // wrk's "Socket errors:" line, if any
}

func run() error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk not found: run bench/run, which installs it (apt-get install wrk)")
	}
	dir, err := os.MkdirTemp("", "autodiscover-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "autodiscover-proxy")
	fmt.Fprintln(os.Stderr, "building autodiscover-proxy ...")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/autodiscover-proxy").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
	ecCert, ecKey, err := writeCert(dir, "ecdsa", false)
	if err != nil {
		return err
	}
	rsaCert, rsaKey, err := writeCert(dir, "rsa", true)
	if err != nil {
		return err
	}

	switch *only {
	case "abuse":
		abuseRows, err := abuse(bin, dir, ecCert, ecKey)
		if err != nil {
			return err
		}
		return report(os.Stdout, nil, abuseRows, nil, 0, 0, 0)
	case "fleet":
		fleetRows, err := fleet(bin, dir, ecCert, ecKey)
		if err != nil {
			return err
		}
		return report(os.Stdout, nil, nil, fleetRows, 0, 0, 0)
	}
	var rows []row
	ours, err := startOurs(bin, dir, ecCert, ecKey)
	if err != nil {
		return err
	}
	defer ours.stop()
	probes := benchProbes()
	sizes, err := answerSizes(ours, probes)
	if err != nil {
		return err
	}
	ref, err := startReference(sizes, ecCert, ecKey)
	if err != nil {
		return err
	}
	defer ref.stop()

	for _, m := range modes {
		for _, p := range probes {
			name := p.label + ", " + m.name
			if !strings.Contains(name, *only) {
				continue
			}
			fmt.Fprintln(os.Stderr, "wrk:", name)
			rw, err := compare(dir, ours, ref, p, m)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			rw.name, rw.target = name, m.target
			rows = append(rows, rw)
		}
	}
	if *only == "" {
		fmt.Fprintln(os.Stderr, "wrk: hostile POX bodies")
		if err := hostile(dir, ours); err != nil {
			return err
		}
	}
	serveRSS, err := peakRSS(ours.cmd.Process.Pid)
	if err != nil {
		return err
	}
	if *only != "" {
		report(os.Stdout, rows, nil, nil, serveRSS, 0, 0)
		return nil
	}

	fmt.Fprintln(os.Stderr, "TLS handshakes: ECDSA")
	hsEC := row{name: "new TLS handshakes/s, ECDSA P-256", target: targetHandshakeRatio}
	hsEC.ours.rps, hsEC.ref.rps, hsEC.ratio = compareHandshakes(ours.httpsAddr, ref.httpsAddr)
	ours.stop()
	ref.stop()

	fmt.Fprintln(os.Stderr, "TLS handshakes: RSA")
	oursRSA, err := startOurs(bin, dir, rsaCert, rsaKey)
	if err != nil {
		return err
	}
	defer oursRSA.stop()
	refRSA, err := startReference(sizes, rsaCert, rsaKey)
	if err != nil {
		return err
	}
	defer refRSA.stop()
	hsRSA := row{name: "new TLS handshakes/s, RSA 2048", target: targetHandshakeRatio}
	hsRSA.ours.rps, hsRSA.ref.rps, hsRSA.ratio = compareHandshakes(oursRSA.httpsAddr, refRSA.httpsAddr)
	rows = append(rows, hsEC, hsRSA)
	oursRSA.stop()
	refRSA.stop()

	abuseRows, err := abuse(bin, dir, ecCert, ecKey)
	if err != nil {
		return fmt.Errorf("abuse: %w", err)
	}

	fmt.Fprintln(os.Stderr, "a replica of a fleet ...")
	fleetRows, err := fleet(bin, dir, ecCert, ecKey)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}

	fmt.Fprintln(os.Stderr, "loading 100,000 domains ...")
	loadSecs, rssMB, err := measureLoad(bin, dir, ecCert, ecKey)
	if err != nil {
		return err
	}
	return report(os.Stdout, rows, abuseRows, fleetRows, serveRSS, loadSecs, rssMB)
}

// mode is how wrk loads a server.
type mode struct {
	name      string
	overTLS   bool
	closeConn bool // a new connection per request
	target    float64
}

var modes = []mode{
	{"HTTPS, new connection per request", true, true, targetNewConnRatio},
	{"HTTPS, keep-alive", true, false, targetKeepAliveRatio},
	{"HTTP, keep-alive", false, false, targetKeepAliveRatio},
}

// benchProbe is one request shape measured.
type benchProbe struct {
	label string
	probe clientcheck.Probe
}

func benchProbes() []benchProbe {
	var out []benchProbe
	for _, c := range []struct{ label, client string }{{"POX (outlook)", "outlook"}, {"JSON (v2)", "json"}, {"autoconfig", "thunderbird"}} {
		p, _ := clientcheck.ProbeFor(c.client, "jane@"+domain, "")
		out = append(out, benchProbe{c.label, p})
	}
	return out
}

// server is a process listening on loopback.
type server struct {
	cmd                 *exec.Cmd
	httpsAddr, httpAddr string
	adminAddr           string // ours only
	stopOnce            sync.Once
}

func (s *server) url(overTLS bool) string {
	if overTLS {
		return "https://" + s.httpsAddr
	}
	return "http://" + s.httpAddr
}

func (s *server) stop() {
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.cmd.Wait()
	})
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after 15s", addr)
}

// startOurs runs autodiscover-proxy with a one-domain config. Requests on
// the HTTP listener from 127.0.0.1 with X-Forwarded-Proto: https get the
// HTTPS routes (the behind-an-ingress mode), so every dialect runs on both.
// Its request log goes to a file, as in production.
func startOurs(bin, dir, cert, key string) (*server, error) {
	return startOursWith(bin, dir, cert, key, "", "", nil)
}

// startOursWith adds top-level config lines, lines under the domain and
// environment variables.
func startOursWith(bin, dir, cert, key, top, underDomain string, env []string) (*server, error) {
	cfg := filepath.Join(dir, "bench.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("tls: {cert_file: %s, key_file: %s}\ntrusted_proxies: [127.0.0.1]\n%sdomains:\n  - name: %s\n    provider: microsoft365\n%s", cert, key, top, domain, underDomain)), 0o600)
	s := &server{httpsAddr: freeAddr(), httpAddr: freeAddr(), adminAddr: freeAddr()}
	logf, err := os.Create(filepath.Join(dir, "requests.log"))
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "serve", "-config", cfg, "-https", s.httpsAddr, "-http", s.httpAddr, "-admin", s.adminAddr, "-log-format", "json")
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, logf
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitListening(s.httpsAddr); err != nil {
		return nil, err
	}
	return s, waitListening(s.httpAddr)
}

// answerSizes asks our server every probe and keeps each body's size.
func answerSizes(s *server, probes []benchProbe) (map[string]int, error) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	sizes := map[string]int{}
	for _, p := range probes {
		req, _ := http.NewRequest(p.probe.Method, s.url(true)+p.probe.Path, strings.NewReader(p.probe.Body))
		req.Host = "autodiscover." + domain
		if p.probe.ContentType != "" {
			req.Header.Set("Content-Type", p.probe.ContentType)
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("%s: HTTP %d", p.label, resp.StatusCode)
		}
		if _, err := p.probe.Read(resp.StatusCode, resp.Header.Get("Content-Type"), body); err != nil {
			return nil, fmt.Errorf("%s: %v", p.label, err)
		}
		path, _, _ := strings.Cut(p.probe.Path, "?")
		sizes[path] = len(body)
	}
	return sizes, nil
}

// startReference runs this program as the reference server.
func startReference(sizes map[string]int, cert, key string) (*server, error) {
	s := &server{httpsAddr: freeAddr(), httpAddr: freeAddr()}
	var spec []string
	for p, n := range sizes {
		spec = append(spec, p+"="+strconv.Itoa(n))
	}
	spec = append(spec, "addrs="+s.httpsAddr+","+s.httpAddr)
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(self, "-reference", strings.Join(spec, ";"), "-cert", cert, "-key", key)
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	for _, a := range []string{s.httpsAddr, s.httpAddr} {
		if err := waitListening(a); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// runReference is the reference: net/http answering each path with a fixed
// body of our size, on HTTP and HTTPS.
func runReference(spec, certFile, keyFile string) {
	bodies := map[string][]byte{}
	var addrs []string
	for _, kv := range strings.Split(spec, ";") {
		k, v, _ := strings.Cut(kv, "=")
		if k == "addrs" {
			addrs = strings.Split(v, ",")
			continue
		}
		n, _ := strconv.Atoi(v)
		bodies[k] = bytes.Repeat([]byte("x"), n)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.Write(bodies[r.URL.Path])
	})
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		panic(err)
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	go (&http.Server{Addr: addrs[1], Handler: h, ErrorLog: quietLog}).ListenAndServe()
	(&http.Server{Addr: addrs[0], Handler: h, TLSConfig: tlsConf, ErrorLog: quietLog}).ListenAndServeTLS("", "")
}

// quietLog is the bench servers' error log: wrk's closed connections are no news.
var quietLog = log.New(io.Discard, "", 0)

// warmUp is the uncounted run before a row's measured ones.
const warmUp = 3 * time.Second

// compare warms both servers up (a run each, not counted: goroutine
// stacks, buffers and the heap reach their working size), then runs them
// in turn (inTurn). A 2-core machine shared with the load generator drifts
// by several percent from one run to the next, and two runs side by side
// drift alike: the ratio reported is the median of each round's ratio,
// next to each server's median run. Then each server runs once more at
// half of our median rate, for its latency there; and our allocations per
// request are counted over the measured runs.
func compare(dir string, ours, ref *server, p benchProbe, m mode) (row, error) {
	oursURL, refURL := ours.url(m.overTLS), ref.url(m.overTLS)
	for _, u := range []string{oursURL, refURL} {
		if _, err := runWrk(dir, u, p, m, warmUp, 0); err != nil {
			return row{}, fmt.Errorf("warm-up %s: %w", u, err)
		}
	}
	mallocsBefore, err := mallocs(ours)
	if err != nil {
		return row{}, err
	}
	var oursRuns, refRuns []result
	var ratios []float64
	var requests int64
	err = inTurn(func() error {
		r, err := runWrk(dir, oursURL, p, m, *duration, 0)
		if err != nil {
			return fmt.Errorf("ours: %w", err)
		}
		oursRuns, requests = append(oursRuns, r), requests+r.requests
		return nil
	}, func() error {
		r, err := runWrk(dir, refURL, p, m, *duration, 0)
		if err != nil {
			return fmt.Errorf("reference: %w", err)
		}
		refRuns = append(refRuns, r)
		return nil
	})
	if err != nil {
		return row{}, err
	}
	mallocsAfter, err := mallocs(ours)
	if err != nil {
		return row{}, err
	}
	for i := range oursRuns {
		ratios = append(ratios, oursRuns[i].rps/refRuns[i].rps)
	}
	rw := row{ours: median(oursRuns), ref: median(refRuns), ratio: middle(ratios)}
	rw.allocs = float64(mallocsAfter-mallocsBefore) / float64(requests)
	rw.halfRate = rw.ours.rps / 2
	if rw.oursHalf, err = runWrk(dir, oursURL, p, m, *duration, rw.halfRate); err != nil {
		return row{}, fmt.Errorf("ours at half rate: %w", err)
	}
	if rw.refHalf, err = runWrk(dir, refURL, p, m, *duration, rw.halfRate); err != nil {
		return row{}, fmt.Errorf("reference at half rate: %w", err)
	}
	return rw, nil
}

// hostile sends POX requests with the largest bodies served (64 KiB of
// nested elements, each read and parsed whole) and ones just past the
// limit, on keep-alive HTTPS connections, for a few seconds: the memory
// they cost shows in the peak RSS reported.
func hostile(dir string, ours *server) error {
	nested := strings.Repeat("<a>", 5000) + strings.Repeat("</a>", 5000)
	for _, body := range []string{
		"<Autodiscover><Request><EMailAddress>" + strings.Repeat("x", 64<<10-70) + "</EMailAddress></Request></Autodiscover>",
		nested + strings.Repeat(" ", 64<<10-len(nested)),
		strings.Repeat("x", 64<<10+1),
	} {
		p := benchProbe{"hostile", clientcheck.Probe{Method: "POST", Path: "/autodiscover/autodiscover.xml", Body: body, ContentType: "text/xml"}}
		if _, err := runWrk(dir, ours.url(true), p, mode{overTLS: true}, *duration, 0); err != nil {
			return fmt.Errorf("hostile bodies: %w", err)
		}
	}
	return nil
}

// mallocs is our process's go_memstats_mallocs_total.
func mallocs(s *server) (uint64, error) {
	f, err := metricValue(s, "go_memstats_mallocs_total")
	return uint64(f), err
}

// peakRSS is a process's resident high-water mark (VmHWM), in MB.
func peakRSS(pid int) (float64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(status)
	if m == nil {
		return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return float64(kb) / 1024, nil
}

// inTurn runs ours and ref once each per round, rounds times, ours first
// in even rounds and second in odd ones: a machine that speeds up or slows
// down during a round then favours neither.
func inTurn(ours, ref func() error) error {
	for i := range *rounds {
		first, second := ours, ref
		if i%2 == 1 {
			first, second = ref, ours
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	return nil
}

// middle is the median of xs (sorted in place; len(xs) is odd here).
func middle(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// median is the run with the median request rate.
func median(rs []result) result {
	slices.SortFunc(rs, func(a, b result) int { return cmp.Compare(a.rps, b.rps) })
	return rs[len(rs)/2]
}

var (
	rpsRE      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	requestsRE = regexp.MustCompile(`(\d+) requests in`)
	p50RE      = regexp.MustCompile(`\s50%\s+(\S+)`)
	p99RE      = regexp.MustCompile(`\s99%\s+(\S+)`)
	// wrk prints this line only when a socket failed.
	socketErrorsRE = regexp.MustCompile(`Socket errors: (.*)`)
)

// runWrk drives one URL with wrk and reads its summary. With rate > 0,
// each connection waits between requests so that together they send about
// rate requests a second (wrk's delay hook).
func runWrk(dir, base string, p benchProbe, m mode, d time.Duration, rate float64) (result, error) {
	script := filepath.Join(dir, "req.lua")
	lua := fmt.Sprintf("wrk.method = %q\nwrk.headers[\"Host\"] = %q\n", p.probe.Method, "autodiscover."+domain)
	if !m.overTLS {
		// Our HTTP listener answers the HTTPS routes for a trusted proxy
		// (127.0.0.1 in the bench config) that says so.
		lua += "wrk.headers[\"X-Forwarded-Proto\"] = \"https\"\n"
	}
	if m.closeConn {
		lua += "wrk.headers[\"Connection\"] = \"close\"\n"
	}
	if p.probe.Body != "" {
		lua += fmt.Sprintf("wrk.body = %q\nwrk.headers[\"Content-Type\"] = %q\n", p.probe.Body, p.probe.ContentType)
	}
	if rate > 0 {
		lua += fmt.Sprintf("function delay() return %d end\n", int(float64(*connections)*1000/rate))
	}
	return wrkScript(script, lua, base+p.probe.Path, *connections, d)
}

// allowNon2xx in a script's text lets its answers be other than 2xx.
const allowNon2xx = "-- non-2xx expected"

// wrkScript runs wrk with a Lua script on url and reads its summary.
func wrkScript(script, lua, url string, conns int, d time.Duration) (result, error) {
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", "-t", "1", "-c", strconv.Itoa(conns), "-d", d.String(),
		"--latency", "-s", script, url).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("Non-2xx")) && !strings.Contains(lua, allowNon2xx) {
		return result{}, fmt.Errorf("wrk saw non-2xx answers:\n%s", out)
	}
	mr, mn := rpsRE.FindSubmatch(out), requestsRE.FindSubmatch(out)
	if mr == nil || mn == nil {
		return result{}, fmt.Errorf("no Requests/sec in wrk's output:\n%s", out)
	}
	r := result{}
	r.rps, _ = strconv.ParseFloat(string(mr[1]), 64)
	r.requests, _ = strconv.ParseInt(string(mn[1]), 10, 64)
	if m := p50RE.FindSubmatch(out); m != nil {
		r.p50 = string(m[1])
	}
	if m := p99RE.FindSubmatch(out); m != nil {
		r.p99 = string(m[1])
	}
	if m := socketErrorsRE.FindSubmatch(out); m != nil {
		r.socketErrors = string(m[1])
	}
	return r, nil
}

// compareHandshakes measures both servers in turn, as compare does: each
// one's median rate, and the median of the rounds' ratios.
func compareHandshakes(oursAddr, refAddr string) (ours, ref, ratio float64) {
	var o, r, ratios []float64
	inTurn(func() error {
		o = append(o, handshakes(oursAddr))
		return nil
	}, func() error {
		r = append(r, handshakes(refAddr))
		return nil
	})
	for i := range o {
		ratios = append(ratios, o[i]/r[i])
	}
	return middle(o), middle(r), middle(ratios)
}

// handshakes counts completed new TLS handshakes per second (no session
// resumption) from 8 concurrent clients.
func handshakes(addr string) float64 {
	var n atomic.Int64
	deadline := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conf := &tls.Config{InsecureSkipVerify: true, ServerName: "autodiscover." + domain}
			for time.Now().Before(deadline) {
				c, err := tls.Dial("tcp", addr, conf)
				if err != nil {
					continue
				}
				if c.Handshake() == nil {
					n.Add(1)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / duration.Seconds()
}

// measureLoad starts serve on a generated 100,000-domain config and times
// it from exec to listening: parse, validation and every answer built. The
// peak RSS is the process's high-water mark (VmHWM).
func measureLoad(bin, dir, cert, key string) (seconds, rssMB float64, err error) {
	cfg := filepath.Join(dir, "big.yaml")
	f, err := os.Create(cfg)
	if err != nil {
		return 0, 0, err
	}
	fmt.Fprintf(f, "tls: {cert_file: %s, key_file: %s}\n", cert, key)
	genconfig.Write(f, 100000)
	f.Close()
	addr := freeAddr()
	cmd := exec.Command(bin, "serve", "-config", cfg, "-https", addr, "-http", "", "-admin", "")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 60*time.Second {
			return 0, 0, fmt.Errorf("serve with 100,000 domains does not listen after 60s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	seconds = time.Since(start).Seconds()
	rssMB, err = peakRSS(cmd.Process.Pid)
	return seconds, rssMB, err
}

func report(w io.Writer, rows []row, abuseRows, fleetRows []abuseRow, serveRSS, loadSecs, loadRSS float64) error {
	missed := 0
	mark := func(ok bool) string {
		if ok {
			return "yes"
		}
		missed++
		return "**no**"
	}
	host, _ := os.Hostname()
	fmt.Fprintf(w, "Measured %s on %s: %d CPUs, %s/%s, %s, wrk with %d connections, loopback; %d runs of %s per server and row, taken in turn: each rate is a median run, each ratio the median of the rounds' ratios; latency is measured in one more run of each server at half of our median rate.\n\n",
		time.Now().UTC().Format("2006-01-02"), host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), *connections, *rounds, *duration)
	if len(rows) > 0 || serveRSS > 0 {
		fmt.Fprintln(w, "| measure | autodiscover-proxy | reference | ratio | target | met | p50 / p99 at half rate: ours, reference | allocs/request |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
		for _, r := range rows {
			half, allocs := "", ""
			if r.halfRate > 0 {
				half = fmt.Sprintf("%.0f/s: %s / %s, %s / %s", r.halfRate, r.oursHalf.p50, r.oursHalf.p99, r.refHalf.p50, r.refHalf.p99)
				allocs = fmt.Sprintf("%.0f", r.allocs)
			}
			fmt.Fprintf(w, "| %s | %.0f/s | %.0f/s | %.3f | ≥ %.2f | %s | %s | %s |\n", r.name, r.ours.rps, r.ref.rps, r.ratio, r.target, mark(r.ratio >= r.target), half, allocs)
		}
		fmt.Fprintf(w, "| peak RSS through the rows above and 64 KiB hostile POX bodies (one domain) | %.0f MB | | | < %d MB | %s | | |\n",
			serveRSS, targetServeRSSMB, mark(serveRSS < targetServeRSSMB))
		if loadSecs > 0 {
			fmt.Fprintf(w, "| serve with 100,000 domains: start to listening | %.2f s, peak RSS %.0f MB | | | < %.0f s, < %d MB | %s | | |\n",
				loadSecs, loadRSS, targetLoadSeconds, targetLoadRSSMB, mark(loadSecs < targetLoadSeconds && loadRSS < targetLoadRSSMB))
		}
	}
	if len(abuseRows) > 0 {
		fmt.Fprintln(w, "\nUnder abuse (one domain, loopback):\n\n| measure | figure | target | met |\n|---|---|---|---|")
		for _, r := range abuseRows {
			met := mark(r.met)
			if r.target == "" { // a yardstick, not a target
				met = ""
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.name, r.value, r.target, met)
		}
	}
	if len(fleetRows) > 0 {
		fmt.Fprintln(w, "\nA replica of a fleet (loopback, wrk with new connections or keep-alive as a load balancer sends them):\n\n| measure | figure |\n|---|---|")
		for _, r := range fleetRows {
			fmt.Fprintf(w, "| %s | %s |\n", r.name, r.value)
		}
	}
	if missed > 0 && *only == "" {
		fmt.Fprintf(w, "\n%d target(s) missed\n", missed)
		os.Exit(1)
	}
	return nil
}

// writeCert writes a self-signed certificate for the bench host names.
func writeCert(dir, name string, useRSA bool) (certFile, keyFile string, err error) {
	var key any
	var pub any
	if useRSA {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", "", err
		}
		key, pub = k, &k.PublicKey
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		key, pub = k, &k.PublicKey
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "autodiscover." + domain},
		DNSNames: []string{"autodiscover." + domain, "autoconfig." + domain, "localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return "", "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile, nil
}
