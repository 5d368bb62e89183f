package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/certs"
	"github.com/autodiscover-proxy/autodiscover-proxy/internal/pgtest"
	"github.com/autodiscover-proxy/autodiscover-proxy/internal/systemtest"
)

// The compose fleet, run for real: its two replicas from
// deploy/docker-compose.fleet.yml with podman, its front from
// deploy/haproxy/haproxy.cfg with Debian's haproxy and the store with
// Debian's PostgreSQL beside them (no image can be pulled here). Checked
// from outside through the front: both replicas ready with the store
// reachable, every handshake the one certificate in the store, answers
// from both replicas.
func TestComposeFleet(t *testing.T) {
	systemtest.Require(t, "the compose fleet with podman and haproxy")
	systemtest.Tool(t, "podman, runc and iptables", "podman")
	haproxy := systemtest.Tool(t, "haproxy", "haproxy")
	if os.Geteuid() != 0 {
		t.Skip("the fleet test runs as root (as CI does)")
	}
	var compose struct {
		Services map[string]struct {
			Image       string
			Command     []string
			Environment map[string]string
			Volumes     []string
		}
	}
	readYAML(t, "docker-compose.fleet.yml", &compose)
	replicas := []string{"replica-1", "replica-2"}
	for _, name := range replicas {
		if _, ok := compose.Services[name]; !ok {
			t.Fatalf("no %s in the compose file", name)
		}
	}

	// The store, with the certificate another replica ordered.
	pgEnv := pgtest.Start(t)
	pg := map[string]string{}
	for _, kv := range pgEnv {
		k, v, _ := strings.Cut(kv, "=")
		pg[k] = v
		t.Setenv(k, v)
	}
	cert := storeCertificate(t, "autodiscover.example.com", "autoconfig.example.com")

	p := &podman{}
	tag := fmt.Sprintf("localhost/autodiscover-proxy-fleet-test:%d", os.Getpid())
	build := exec.Command(filepath.Join(deployDir, "build-image"), tag)
	build.Env = append(os.Environ(), "CONTAINER_ENGINE=podman")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/build-image: %v\n%s", err, out)
	}
	t.Cleanup(func() { p.cmd("rmi", "-f", tag).Run() })
	if out, err := p.cmd("run", "--rm", tag, "version").CombinedOutput(); err != nil {
		p.fallback = true
		t.Logf("plain podman run failed (%v: %s); using runc and cgroupfs", err, out)
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.fleet.yaml")
	// The front reaches the replicas through podman's port forwarding,
	// from an address of its network: trusted, as the compose file's
	// network is.
	os.WriteFile(cfg, []byte("tls: {acme: {email: postmaster@example.net, store: postgres, directory_url: 'https://127.0.0.1:1/directory'}}\n"+
		"trusted_proxies: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 127.0.0.0/8]\n"+
		"domains:\n  - {name: example.com, provider: microsoft365}\n"), 0o644)

	type published struct{ https, http, admin string }
	ports := map[string]published{}
	for _, name := range replicas {
		svc := compose.Services[name]
		o := parseServe(t, name+" command", svc.Command)
		pp := published{freePort(t), freePort(t), freePort(t)}
		ports[name] = pp
		args := []string{"run", "-d", "--name", fmt.Sprintf("fleet-%s-%d", name, os.Getpid()),
			"-p", "127.0.0.1:" + pp.https + ":" + port(t, o.https), "-p", "127.0.0.1:" + pp.http + ":" + port(t, o.http),
			"-p", "127.0.0.1:" + pp.admin + ":" + port(t, o.admin),
			"-v", cfg + ":" + o.config + ":ro", "-v", pg["PGHOST"] + ":/pgsocket"}
		for k, v := range svc.Environment {
			switch k {
			case "PGHOST":
				v = "/pgsocket" // the store beside the containers, through its socket
			case "PGDATABASE", "PGUSER":
				v = pg[k]
			}
			args = append(args, "-e", k+"="+v)
		}
		args = append(args, tag)
		args = append(args, svc.Command...)
		p.run(t, args...)
		cname := fmt.Sprintf("fleet-%s-%d", name, os.Getpid())
		t.Cleanup(func() { p.cmd("rm", "-f", cname).Run() })
	}

	// The front: the compose file's haproxy.cfg, its binds and servers on
	// the loopback ports published here.
	front, err := os.ReadFile(filepath.Join(deployDir, "haproxy", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	frontHTTPS, frontHTTP := freePort(t), freePort(t)
	text := strings.NewReplacer("bind :443", "bind 127.0.0.1:"+frontHTTPS, "bind :80", "bind 127.0.0.1:"+frontHTTP,
		"replica-1:8443", "127.0.0.1:"+ports["replica-1"].https, "replica-2:8443", "127.0.0.1:"+ports["replica-2"].https,
		"replica-1:8080", "127.0.0.1:"+ports["replica-1"].http, "replica-2:8080", "127.0.0.1:"+ports["replica-2"].http,
		"log stdout format raw local0", "").Replace(string(front))
	if strings.Contains(text, "replica-1:") || !strings.Contains(text, "balance roundrobin") {
		t.Fatalf("the front's config did not take the published ports:\n%s", text)
	}
	frontCfg := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(frontCfg, []byte(text), 0o644)
	hp := exec.Command(haproxy, "-db", "-f", frontCfg)
	hpLog := &syncBuffer{}
	hp.Stdout, hp.Stderr = hpLog, hpLog
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hp.Process.Kill(); hp.Wait() })

	c := &http.Client{Timeout: 10 * time.Second}
	for _, name := range replicas {
		admin := ports[name].admin
		waitFor(t, name+" to be ready", func() bool {
			resp, err := c.Get("http://127.0.0.1:" + admin + "/readyz")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == 200 && strings.Contains(string(b), "certificate store: reachable")
		})
	}

	waitFor(t, "the front to listen", func() bool {
		conn, err := net.Dial("tcp", "127.0.0.1:"+frontHTTPS)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})

	// Through the front, from outside: every handshake is the stored
	// certificate, and the answers come from both replicas (a new
	// connection each, as clients connect: round robin alternates).
	for i := range 6 {
		var served *x509.Certificate
		tc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "autodiscover.example.com",
				VerifyConnection: func(cs tls.ConnectionState) error { served = cs.PeerCertificates[0]; return nil }}}}
		if pox := postPOX(t, tc, "https://127.0.0.1:"+frontHTTPS+"/autodiscover/autodiscover.xml", "user@example.com"); pox.Action != "settings" {
			t.Errorf("POX %d through the front: %+v", i, pox)
		}
		if served == nil || !served.Equal(cert.Leaf) {
			t.Errorf("request %d: not the certificate in the shared store", i)
		}
	}
	count := regexp.MustCompile(`(?m)^autodiscover_requests_total\{[^}]*dialect="pox"[^}]*\} (\d+)`)
	for _, name := range replicas {
		_, m := get(t, c, "http://127.0.0.1:"+ports[name].admin+"/metrics")
		n := 0
		for _, mm := range count.FindAllStringSubmatch(m, -1) {
			v, _ := strconv.Atoi(mm[1])
			n += v
		}
		if n == 0 {
			t.Errorf("%s answered no request through the round-robin front; front:\n%s", name, hpLog)
		}
		// The front named the client (this test, on 127.0.0.1) in a PROXY
		// header: the replica logged it, not the front's address.
		// (The request log is written in batches: looked at until it is.)
		logged := regexp.MustCompile(`(?m)^\{.*"dialect":"pox".*$`)
		var logs []byte
		waitFor(t, name+"'s request log", func() bool {
			logs, _ = p.cmd("logs", fmt.Sprintf("fleet-%s-%d", name, os.Getpid())).CombinedOutput()
			return logged.Match(logs)
		})
		for _, line := range logged.FindAll(logs, -1) {
			if !strings.Contains(string(line), `"client":"127.0.0.1"`) {
				t.Errorf("%s did not log the client's address from the front's PROXY header: %s", name, line)
			}
		}
	}
}

// storeCertificate puts a certificate for hosts into the PostgreSQL store
// the environment names, as the replica that ordered it would have (in
// autocert's cache format: the key, then the chain, in PEM).
func storeCertificate(t *testing.T, hosts ...string) *tls.Certificate {
	t.Helper()
	cert, err := certs.SelfSigned(hosts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	store, err := certs.NewPGCache(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	der, _ := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	pemData := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for _, b := range cert.Certificate {
		pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b})...)
	}
	for _, h := range hosts {
		if err := store.Put(t.Context(), h, pemData); err != nil {
			t.Fatal(err)
		}
	}
	return cert
}
