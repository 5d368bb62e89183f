package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/autodiscover-proxy/autodiscover-proxy/internal/systemtest"
)

// The alert rules are valid and each fires as its test says (promtool,
// from Debian's prometheus package); every alert has a test.
func TestAlertRules(t *testing.T) {
	promtool := systemtest.Tool(t, "prometheus", "promtool")
	dir := filepath.Join(deployDir, "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert string }
		}
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
			} `yaml:"alert_rule_test"`
		}
	}
	readYAML(t, "prometheus/alerts.yml", &rules)
	readYAML(t, "prometheus/alerts_test.yml", &tests)
	tested := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			tested[a.Alertname] = true
		}
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if !tested[r.Alert] {
				t.Errorf("alert %s has no test in alerts_test.yml", r.Alert)
			}
		}
	}
}

// Every metric the alert rules and the dashboard name is one the binary
// exports: a running serve with certificate files, an upstream-mode
// domain and a request, so that every family has a sample.
func TestMonitoringNamesExportedMetrics(t *testing.T) {
	dir := t.TempDir()
	writeCertificate(t, dir, "autodiscover.contoso.com", "autoconfig.contoso.com")
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("tls: {cert_file: cert.pem, key_file: key.pem}\ndomains:\n  - name: contoso.com\n    provider: microsoft365\n"+
		"    upstream: {url: 'https://127.0.0.1:1/autodiscover/autodiscover.xml', timeout: 1s}\n"), 0o600)
	r := startServe(t, "-config", cfg)
	req, _ := http.NewRequest("POST", "http://"+r.http+"/autodiscover/autodiscover.xml", strings.NewReader(fmt.Sprintf(poxRequest, "jane@contoso.com")))
	req.Host = "autodiscover.contoso.com"
	req.Header.Set("X-Forwarded-Proto", "https") // not trusted: a 400, which counts too
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "autodiscover.contoso.com"}}}
	postPOX(t, c, "https://"+r.https+"/autodiscover/autodiscover.xml", "jane@contoso.com")
	_, metrics := get(t, http.DefaultClient, "http://"+r.admin+"/metrics")
	exported := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(metrics, -1) {
		exported[m[1]] = true
	}

	named := map[string][]string{}
	name := regexp.MustCompile(`\bautodiscover_[a-z_]+`)
	rules, _ := os.ReadFile(filepath.Join(deployDir, "prometheus", "alerts.yml"))
	for _, n := range name.FindAllString(string(rules), -1) {
		named[n] = append(named[n], "alerts.yml")
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	b, err := os.ReadFile(filepath.Join(deployDir, "grafana", "autodiscover-proxy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, n := range name.FindAllString(q.Expr, -1) {
				named[n] = append(named[n], "dashboard: "+p.Title)
			}
		}
	}
	if len(named) < 6 {
		t.Fatalf("the rules and dashboard name %d metrics: too few to be what they should be", len(named))
	}
	for n, where := range named {
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suffix); ok && exported[b] {
				base = b
			}
		}
		if !exported[base] {
			slices.Sort(where)
			t.Errorf("%s (in %s) is not a metric the binary exports", n, strings.Join(slices.Compact(where), ", "))
		}
	}
}
