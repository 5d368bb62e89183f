package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"flag"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/autodiscover-proxy/autodiscover-proxy/autodiscover"
	"github.com/autodiscover-proxy/autodiscover-proxy/clientcheck"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const testConfig = "../../autodiscover/testdata/config.yaml"

func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(path, got, 0o644)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/autodiscover-proxy -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n%s", path, got)
	}
}

func TestDNSCommand(t *testing.T) {
	code, zone, errs := runCmd("dns", "-config", testConfig, "-target", "proxy.example.net")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	golden(t, "dns.zone", []byte(zone))
	code, js, _ := runCmd("dns", "-config", testConfig, "-target", "proxy.example.net", "-format", "json")
	if code != 0 {
		t.Fatal(code)
	}
	golden(t, "dns.json", []byte(js))
	var records []map[string]any
	if err := json.Unmarshal([]byte(js), &records); err != nil || len(records) == 0 {
		t.Fatalf("json: %v", err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"dns", "-config", testConfig, "-format", "bind"}, 2, `-format "bind": use zone or json`},
		{[]string{"dns", "-config", testConfig, "-target", "not a host"}, 1, `-target "not a host"`},
		{[]string{"dns", "-h"}, 0, "example: autodiscover-proxy dns"},
	} {
		if code, _, errs := runCmd(tc.args...); code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d %q, want %d %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}

// render prints, byte for byte, what the handler answers that client.
func TestRenderCommand(t *testing.T) {
	cfg, err := config.Load(testConfig)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := autodiscover.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, client := range clientcheck.Clients {
		code, out, errs := runCmd("render", "-config", testConfig, "-email", "jane@contoso.com", "-client", client)
		if code != 0 {
			t.Errorf("%s: exit %d: %s", client, code, errs)
			continue
		}
		p, _ := clientcheck.ProbeFor(client, "jane@contoso.com", "")
		r := httptest.NewRequest(p.Method, p.Path, strings.NewReader(p.Body))
		r.Host = "autodiscover.contoso.com"
		for k, v := range p.Header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		srv.HTTPSHandler().ServeHTTP(w, r)
		if out != w.Body.String() {
			t.Errorf("%s: render differs from the handler:\n%s\n---\n%s", client, out, w.Body)
		}
		if _, err := p.Read(w.Code, w.Header().Get("Content-Type"), []byte(out)); err != nil {
			t.Errorf("%s: %v", client, err)
		}
	}
	// Outlook desktop asking for Exchange gets the redirect to Microsoft,
	// as render says; every client kind is explained in the help.
	if _, out, _ := runCmd("render", "-config", testConfig, "-email", "jane@contoso.com", "-client", "outlook-desktop"); !strings.Contains(out, "<Action>redirectUrl</Action>") {
		t.Errorf("outlook-desktop for Microsoft 365 is not the redirect:\n%s", out)
	}
	_, _, help := runCmd("render", "-h")
	for _, c := range clientcheck.Clients {
		if clientcheck.ClientKinds[c] == "" || !strings.Contains(help, clientcheck.ClientKinds[c]) {
			t.Errorf("render's help does not say what %s stands for", c)
		}
	}
	// An unconfigured domain: the error document clients get, and a failure.
	if code, out, errs := runCmd("render", "-config", testConfig, "-email", "eve@unknown.example", "-client", "outlook"); code == 0 ||
		!strings.Contains(out, "<ErrorCode>500</ErrorCode>") || !strings.Contains(errs, "unknown.example is not configured") {
		t.Errorf("unknown domain: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := runCmd("render", "-config", testConfig, "-email", "eve@unknown.example", "-client", "thunderbird"); code != 1 || !strings.Contains(out, "no mail configuration") {
		t.Errorf("unknown domain, thunderbird: exit %d %q", code, out)
	}
	for _, args := range [][]string{{"render", "-email", "a@b.com"}, {"render", "-email", "a@b.com", "-client", "pine"}} {
		if code, _, errs := runCmd(args...); code != 2 || errs == "" {
			t.Errorf("%q: exit %d", args, code)
		}
	}
}

// doctor against a running serve: hosts-file failures make it exit 1 with
// a fix per finding; with a clean hosts file and a trusted certificate,
// every live check passes.
func TestDoctorCommand(t *testing.T) {
	r := startServe(t)
	// serve's development certificate, trusted as a private CA.
	conn, err := tls.Dial("tcp", r.https, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: conn.ConnectionState().PeerCertificates[0].Raw}), 0o600)
	conn.Close()

	code, out, errs := runCmd("doctor", "-skip-dns", "-hosts", "../../doctor/testdata/hosts-stale", "-connect", r.https, "-ca", ca)
	if code != 1 {
		t.Errorf("stale hosts file: exit %d, want 1\n%s%s", code, out, errs)
	}
	for _, want := range []string{"FAIL  hosts  ../../doctor/testdata/hosts-stale:3: pins outlook.office365.com", "fix: delete line 3", "PASS  live   autodiscover.example.com outlook"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runCmd("doctor", "-skip-dns", "example.com", "-hosts", "../../doctor/testdata/hosts-clean", "-connect", r.https, "-ca", ca, "-json")
	var fs []map[string]string
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatalf("-json after a domain argument: %v\n%s", err, out)
	}
	if code != 0 {
		t.Errorf("clean: exit %d\n%s", code, out)
	}
	live := 0
	for _, f := range fs {
		if f["check"] == "live" {
			live++
			if f["level"] == "fail" {
				t.Errorf("%v", f)
			}
		}
	}
	if live < 6 {
		t.Errorf("%d live findings", live)
	}

	// DNS through an unreachable resolver: one failure that says so, and
	// no failure per record.
	code, out, _ = runCmd("doctor", "-skip-live", "-resolver", "127.0.0.1:1", "-hosts", "../../doctor/testdata/hosts-clean")
	if code != 1 || !strings.Contains(out, "FAIL  dns    resolver: it answers nothing") || strings.Count(out, "FAIL") != 1 {
		t.Errorf("unreachable resolver: exit %d\n%s", code, out)
	}
	if code, _, errs := runCmd("doctor", "-skip-live", "-skip-dns", "nowhere.example"); code != 1 || !strings.Contains(errs, "nowhere.example is not a configured domain") {
		t.Errorf("unknown domain argument: exit %d %q", code, errs)
	}
	if code, _, errs := runCmd("doctor", "-h"); code != 0 || !strings.Contains(errs, "example: autodiscover-proxy doctor") {
		t.Errorf("-h: exit %d", code)
	}
}

// With log.address_key_file, every replica logs an address as the same
// value, and hash-address prints it; without it, hash-address says why it
// cannot.
func TestHashAddress(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "address.key")
	os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	cfgFile := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgFile, []byte("log: {address_key_file: address.key}\ndomains:\n  - {name: contoso.com, provider: microsoft365}\n"), 0o600)
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	logged := func() string {
		srv, err := autodiscover.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		srv.Log = slog.New(slog.NewTextHandler(&logs, nil))
		r := httptest.NewRequest("GET", "/mail/config-v1.1.xml?emailaddress=Jane@Contoso.com", nil)
		r.Host = "autoconfig.contoso.com"
		srv.HTTPSHandler().ServeHTTP(httptest.NewRecorder(), r)
		m := regexp.MustCompile(`address=(h:[0-9a-f]+)`).FindStringSubmatch(logs.String())
		if m == nil {
			t.Fatalf("no hashed address in %s", logs.String())
		}
		return m[1]
	}
	one, two := logged(), logged()
	if one != two {
		t.Errorf("two replicas with one key file log %s and %s", one, two)
	}
	code, out, errs := runCmd("hash-address", "-config", cfgFile, "jane@contoso.com")
	if code != 0 || strings.TrimSpace(out) != one {
		t.Errorf("hash-address: exit %d, %q (%s); the logs carry %s", code, out, errs, one)
	}
	os.WriteFile(cfgFile, []byte("domains:\n  - {name: contoso.com, provider: microsoft365}\n"), 0o600)
	if code, _, errs := runCmd("hash-address", "-config", cfgFile, "jane@contoso.com"); code != 1 || !strings.Contains(errs, "no log.address_key_file") {
		t.Errorf("without a key file: exit %d: %s", code, errs)
	}
}

// check-config -as-user: the files the service reads must be readable by
// the user it runs as, with the fix in the message; example domains and
// addresses left in are warnings.
func TestCheckConfigAsUser(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir's own parent
	key := filepath.Join(dir, "address.key")
	os.WriteFile(key, []byte(strings.Repeat("ab", 32)), 0o600)
	cfgFile := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgFile, []byte("log: {address_key_file: address.key}\ndomains:\n  - {name: contoso.com, provider: microsoft365}\n"), 0o644)
	code, out, errs := runCmd("check-config", "-config", cfgFile, "-as-user", "nobody")
	if code != 1 || !strings.Contains(errs, "log.address_key_file "+key+" is not readable by nobody") || !strings.Contains(errs, "chgrp nobody") {
		t.Errorf("a key file nobody may read: exit %d\n%s", code, errs)
	}
	code, _, errs = runCmd("check-config", "-config", cfgFile, "-as-user", "no-such-user-here")
	if code != 1 || !strings.Contains(errs, "DynamicUser") || !strings.Contains(errs, "LoadCredential=address.key:"+key) {
		t.Errorf("a user systemd makes at start: exit %d\n%s", code, errs)
	}
	os.Chmod(key, 0o644)
	code, out, errs = runCmd("check-config", "-config", cfgFile, "-as-user", "nobody")
	if code != 0 || !strings.Contains(out, "warning: contoso.com is an example domain") {
		t.Errorf("readable files: exit %d\n%s%s", code, out, errs)
	}
}
