package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/internal/genconfig"
)

// A replica of a fleet: a provider's customer domains, one file per group
// of customers under include:, loaded the way a load balancer loads a
// replica while the files change (a customer added every 1.5 s, which the
// replica loads by itself).
const (
	fleetDomains     = 10000
	fleetFiles       = 100
	fleetRun         = 10 * time.Second
	fleetChangeEvery = 1500 * time.Millisecond
)

func fleet(bin, dir, cert, key string) ([]abuseRow, error) {
	d := filepath.Join(dir, "fleet")
	inc := filepath.Join(d, "domains.d")
	if err := os.MkdirAll(inc, 0o700); err != nil {
		return nil, err
	}
	per := fleetDomains / fleetFiles
	for i := range fleetFiles {
		f, err := os.Create(filepath.Join(inc, fmt.Sprintf("customers-%03d.yaml", i)))
		if err != nil {
			return nil, err
		}
		genconfig.Domains(f, i*per, per)
		if err := f.Close(); err != nil {
			return nil, err
		}
	}
	cfg := filepath.Join(d, "fleet.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("tls: {cert_file: %s, key_file: %s}\ntrusted_proxies: [127.0.0.1]\ninclude: [domains.d/*.yaml]\n", cert, key)), 0o600); err != nil {
		return nil, err
	}

	s := &server{httpsAddr: freeAddr(), httpAddr: freeAddr(), adminAddr: freeAddr()}
	s.cmd = exec.Command(bin, "serve", "-config", cfg, "-https", s.httpsAddr, "-http", s.httpAddr, "-admin", s.adminAddr, "-log-format", "json")
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, io.Discard
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	defer s.stop()
	if err := waitListening(s.httpsAddr); err != nil {
		return nil, err
	}
	startSecs := time.Since(start).Seconds()
	if err := waitListening(s.httpAddr); err != nil {
		return nil, err
	}
	startRSS, err := peakRSS(s.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	rows := []abuseRow{{name: fmt.Sprintf("%d domains in %d included files: start to listening, peak RSS", fleetDomains, fleetFiles),
		value: fmt.Sprintf("%.2f s, %.0f MB", startSecs, startRSS)}}

	// A customer added to an idle replica: from the file's write to the
	// new config served (the watcher waits 0.5 s for the files to settle).
	added := 0
	addCustomer := func() (string, error) {
		n := fleetDomains + added*10 + 1 // a microsoft365 tenant (genconfig)
		added++
		f, err := os.Create(filepath.Join(inc, fmt.Sprintf("added-%03d.yaml", added)))
		if err != nil {
			return "", err
		}
		genconfig.Domains(f, n, 1)
		return fmt.Sprintf("tenant%d.example", n), f.Close()
	}
	written := time.Now()
	if _, err := addCustomer(); err != nil {
		return nil, err
	}
	if err := awaitConfig(s, cfg); err != nil {
		return nil, err
	}
	rows = append(rows, abuseRow{name: "a customer's file added to an idle replica: write to served", value: fmt.Sprintf("%.2f s", time.Since(written).Seconds())})

	for _, m := range []mode{modes[0], modes[2]} {
		reloadsBefore, err := metricValue(s, `autodiscover_config_reloads_total{result="success"}`)
		if err != nil {
			return nil, err
		}
		stop, changed := make(chan struct{}), make(chan error, 1)
		var last string
		go func() {
			t := time.NewTicker(fleetChangeEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					changed <- nil
					return
				case <-t.C:
					var err error
					if last, err = addCustomer(); err != nil {
						changed <- err
						return
					}
				}
			}
		}()
		r, err := wrkScript(filepath.Join(dir, "fleet.lua"), fleetLua(m), s.url(m.overTLS)+"/", *connections, fleetRun)
		close(stop)
		if cerr := <-changed; cerr != nil {
			return nil, cerr
		}
		if err != nil {
			return nil, fmt.Errorf("fleet, %s: %w", m.name, err)
		}
		if r.socketErrors != "" {
			return nil, fmt.Errorf("fleet, %s: wrk's socket errors while the config changed: %s", m.name, r.socketErrors)
		}
		// Every change is loaded, and the last customer added answers.
		if err := awaitConfig(s, cfg); err != nil {
			return nil, err
		}
		if err := answers(s, last); err != nil {
			return nil, err
		}
		reloadsAfter, err := metricValue(s, `autodiscover_config_reloads_total{result="success"}`)
		if err != nil {
			return nil, err
		}
		rows = append(rows, abuseRow{
			name: fmt.Sprintf("JSON (v2) across the %d domains, %s, while customers are added", fleetDomains, m.name),
			value: fmt.Sprintf("%.0f/s, %d requests, 0 failed, %.0f reloads of %d domains (p50 %s, p99 %s)",
				r.rps, r.requests, reloadsAfter-reloadsBefore, fleetDomains, r.p50, r.p99)})
	}
	rss, err := peakRSS(s.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	rows = append(rows, abuseRow{name: "peak RSS through the rows above", value: fmt.Sprintf("%.0f MB", rss)})
	return rows, nil
}

// fleetLua asks for the JSON answer of a different microsoft365 tenant
// (genconfig's tenants 1 to 7 of every ten) in each request.
func fleetLua(m mode) string {
	headers := `["Host"] = "autodiscover.tenant" .. t .. ".example"`
	if m.closeConn {
		headers += `, ["Connection"] = "close"`
	}
	if !m.overTLS {
		headers += `, ["X-Forwarded-Proto"] = "https"` // as an ingress sends it
	}
	return fmt.Sprintf(`local n = 0
request = function()
  n = n + 1
  local t = (n * 7919 %% %d) * 10 + 1 + n %% 7
  return wrk.format("GET", "/autodiscover/autodiscover.json?Email=jane%%40tenant" .. t .. ".example&Protocol=ActiveSync", {%s})
end
`, fleetDomains/10, headers)
}

// awaitConfig waits, 30 s at most, until s serves the config its files
// hold now.
func awaitConfig(s *server, file string) error {
	c, err := config.Load(file)
	if err != nil {
		return err
	}
	want := `autodiscover_config_info{hash="` + c.Hash + `"} 1`
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := metrics(s)
		if err != nil {
			return err
		}
		if regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(b) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the replica does not serve its files' config (%s) after 30 s", c.Hash)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var insecure = sync.OnceValue(func() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
})

// answers checks that domain's JSON answer is a 200.
func answers(s *server, domain string) error {
	req, _ := http.NewRequest("GET", "https://"+s.httpsAddr+"/autodiscover/autodiscover.json?Email=jane%40"+domain+"&Protocol=ActiveSync", nil)
	req.Host = "autodiscover." + domain
	resp, err := insecure().Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s, added while loaded: %s", domain, resp.Status)
	}
	return nil
}

func metrics(s *server) ([]byte, error) {
	resp, err := http.Get("http://" + s.adminAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// metricValue reads one sample of s's /metrics.
func metricValue(s *server, sample string) (float64, error) {
	b, err := metrics(s)
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("no %s in /metrics", sample)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
