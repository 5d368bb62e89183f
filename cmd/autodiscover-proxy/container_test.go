package main

import (
	"archive/tar"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/internal/systemtest"
)

// podman runs podman, with this machine's fallback when the plain form
// fails: some sandboxes refuse crun's cgroup layout and default ulimits,
// and need runc, cgroupfs and the current limits.
type podman struct {
	fallback bool
}

func (p *podman) cmd(args ...string) *exec.Cmd {
	global := []string{}
	if p.fallback {
		global = []string{"--runtime", "runc", "--cgroup-manager", "cgroupfs"}
	}
	if p.fallback && len(args) > 0 && args[0] == "run" {
		var nofile, nproc syscall.Rlimit
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
		syscall.Getrlimit(6 /* RLIMIT_NPROC */, &nproc)
		pidMax := uint64(32768)
		if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
			if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
				pidMax = n
			}
		}
		n := min(nproc.Cur, pidMax)
		args = append([]string{"run", "--ulimit", fmt.Sprintf("nofile=%d:%d", nofile.Cur, nofile.Cur), "--ulimit", fmt.Sprintf("nproc=%d:%d", n, n)}, args[1:]...)
	}
	return exec.Command("podman", append(global, args...)...)
}

func (p *podman) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.cmd(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// freePort is a loopback port nothing listens on now.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return port(t, ln.Addr().String())
}

// The image as compose runs it, checked from outside: built by
// deploy/build-image with no base image, the state directory the image's
// own and writable in a fresh volume, redirects without the internal port,
// POX over the published https port, /readyz, and a stop that exits 0.
func TestContainerImage(t *testing.T) {
	systemtest.Require(t, "the container image with podman")
	systemtest.Tool(t, "podman, runc and iptables", "podman")
	if os.Geteuid() != 0 {
		t.Skip("the container test runs as root (as CI does)")
	}
	p := &podman{}
	tag := fmt.Sprintf("localhost/autodiscover-proxy-test:%d", os.Getpid())
	build := exec.Command(filepath.Join(deployDir, "build-image"), tag)
	build.Env = append(os.Environ(), "CONTAINER_ENGINE=podman")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/build-image: %v\n%s", err, out)
	}
	t.Cleanup(func() { p.cmd("rmi", "-f", tag).Run() })

	// The image itself makes the state directory, owned by its user: under
	// Docker a new named volume takes its owner from there (podman would
	// hand it to the user anyway).
	probe := p.run(t, "create", tag)
	t.Cleanup(func() { p.cmd("rm", "-f", "-v", probe).Run() })
	exported, err := p.cmd("export", probe).Output()
	if err != nil {
		t.Fatalf("podman export: %v", err)
	}
	var stateDir *tar.Header
	for tr := tar.NewReader(bytes.NewReader(exported)); ; {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/") == "var/lib/autodiscover-proxy" {
			stateDir = h
		}
	}
	if stateDir == nil || stateDir.Typeflag != tar.TypeDir || strconv.Itoa(stateDir.Uid) != imageUser || stateDir.Mode&0o700 != 0o700 {
		t.Fatalf("the image's /var/lib/autodiscover-proxy: %+v; want a directory owned by %s", stateDir, imageUser)
	}

	// Try the plain form; fall back on machines that need it.
	if out, err := p.cmd("run", "--rm", tag, "version").CombinedOutput(); err != nil {
		p.fallback = true
		t.Logf("plain podman run failed (%v: %s); using runc, cgroupfs and the current ulimits", err, bytes.TrimSpace(out))
		if v := p.run(t, "run", "--rm", tag, "version"); !strings.HasPrefix(v, "autodiscover-proxy ") {
			t.Fatalf("version in the container: %q", v)
		}
	}

	// compose's mapping: its container ports, on free loopback host ports;
	// its volumes: the config file and a fresh named volume for the cache.
	d := readDockerfile(t)
	o := parseServe(t, "Dockerfile CMD", d.cmd)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("domains:\n  - name: example.com\n    provider: microsoft365\n"), 0o644)
	acme := filepath.Join(dir, "acme.yaml")
	os.WriteFile(acme, []byte("tls: {acme: {email: postmaster@example.com, cache_dir: /var/lib/autodiscover-proxy/acme}}\ndomains:\n  - name: example.com\n    provider: microsoft365\n"), 0o644)
	volume := fmt.Sprintf("autodiscover-proxy-test-%d", os.Getpid())
	t.Cleanup(func() { p.cmd("volume", "rm", "-f", volume).Run() })

	// The cache volume is writable by the container's user: check-config
	// writes there as serve's ACME client would.
	if out := p.run(t, "run", "--rm", "-v", volume+":"+d.volume, "-v", acme+":/etc/autodiscover-proxy/config.yaml:ro", tag,
		"check-config", "-config", "/etc/autodiscover-proxy/config.yaml"); !strings.Contains(out, "OK, 1 domain(s)") {
		t.Errorf("check-config of an ACME config in the container:\n%s", out)
	}

	httpsPort, httpPort, adminPort := freePort(t), freePort(t), freePort(t)
	name := fmt.Sprintf("autodiscover-proxy-test-%d", os.Getpid())
	p.run(t, "run", "-d", "--name", name,
		"-p", "127.0.0.1:"+httpsPort+":"+port(t, o.https), "-p", "127.0.0.1:"+httpPort+":"+port(t, o.http), "-p", "127.0.0.1:"+adminPort+":"+port(t, o.admin),
		"-v", cfg+":"+o.config+":ro", "-v", volume+":"+d.volume, tag)
	t.Cleanup(func() { p.cmd("rm", "-f", "-v", name).Run() })
	logs := func() string { out, _ := p.cmd("logs", name).CombinedOutput(); return string(out) }

	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var ready string
	waitFor(t, "/readyz in the container", func() bool {
		resp, err := c.Get("http://127.0.0.1:" + adminPort + "/readyz")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ready = string(b)
		return resp.StatusCode == 200
	})
	if ready != "ready\n" {
		t.Errorf("/readyz: %q", ready)
	}

	// Outlook's HTTP-redirect step: the Location names the public port (443,
	// left out), never the container's 8443.
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+httpPort+"/autodiscover/autodiscover.xml", nil)
	req.Host = "autodiscover.example.com"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs())
	}
	resp.Body.Close()
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc == nil || loc.Host != "autodiscover.example.com" {
		t.Errorf("redirect %d Location %q: want 302 to https://autodiscover.example.com/... with no port", resp.StatusCode, resp.Header.Get("Location"))
	}

	// POX over the published https port.
	pox := postPOX(t, c, "https://127.0.0.1:"+httpsPort+"/autodiscover/autodiscover.xml", "user@example.com")
	if pox.Action != "settings" || len(pox.Servers) == 0 || pox.Servers[0].Host != "outlook.office365.com" {
		t.Errorf("POX in the container: %+v", pox)
	}

	// Stop: SIGTERM, requests in flight finish, exit 0, well within the grace period.
	start := time.Now()
	out, err := p.cmd("stop", "-t", "15", name).CombinedOutput()
	if err != nil {
		t.Fatalf("podman stop: %v\n%s", err, out)
	}
	took := time.Since(start)
	status, _ := p.cmd("inspect", "--format", "{{.State.ExitCode}}", name).Output()
	if strings.TrimSpace(string(status)) != "0" || took > 14*time.Second {
		t.Errorf("stopped with exit status %s after %s (grace 15 s); log:\n%s", status, took, logs())
	}
	if !strings.Contains(logs(), `"msg":"stopped"`) {
		t.Errorf("no stop line in the log:\n%s", logs())
	}
}
