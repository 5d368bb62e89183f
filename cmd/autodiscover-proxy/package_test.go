package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autodiscover-proxy/autodiscover-proxy/internal/systemtest"
)

// The release build: static binaries for linux amd64 and arm64 and a
// Debian package for each; the amd64 package is installed with dpkg on
// this machine (as CI does), its binary runs, its unit passes
// systemd-analyze verify, and it is removed again.
func TestDebianPackage(t *testing.T) {
	systemtest.Require(t, "the Debian package installed with dpkg")
	systemtest.Tool(t, "dpkg", "dpkg")
	systemtest.Tool(t, "systemd", "systemd-analyze")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root: dpkg -i needs it")
		}
		t.Skip("installing the package needs root (as CI runs)")
	}
	if out, err := exec.Command("dpkg", "-s", "autodiscover-proxy").CombinedOutput(); err == nil && strings.Contains(string(out), "Status: install ok installed") {
		t.Skip("autodiscover-proxy is installed on this machine already: not replacing it")
	}
	const version = "0.0.0~citest"
	build := exec.Command(filepath.Join(deployDir, "build-package"), version)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/build-package: %v\n%s", err, out)
	}
	dist := filepath.Join(deployDir, "..", "dist")
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		f, err := elf.Open(filepath.Join(dist, "linux-"+arch, "autodiscover-proxy"))
		if err != nil {
			t.Fatalf("%s binary: %v", arch, err)
		}
		static := true
		for _, p := range f.Progs {
			static = static && p.Type != elf.PT_INTERP
		}
		if f.Machine != machine || !static {
			t.Errorf("%s binary: machine %v, static %v", arch, f.Machine, static)
		}
		f.Close()
		if _, err := os.Stat(filepath.Join(dist, "autodiscover-proxy_"+version+"_"+arch+".deb")); err != nil {
			t.Errorf("no %s package: %v", arch, err)
		}
	}

	deb := filepath.Join(dist, "autodiscover-proxy_"+version+"_amd64.deb")
	if out, err := exec.Command("dpkg", "-i", deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		os.RemoveAll("/var/lib/autodiscover-proxy/acme") // check-config's, below
		// Purged already by the test, or now if it stopped early.
		if out, err := exec.Command("dpkg", "--purge", "autodiscover-proxy").CombinedOutput(); err != nil || strings.Contains(string(out), "not removed") {
			t.Errorf("dpkg --purge: %v\n%s", err, out)
		}
	})
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "autodiscover-proxy").Output(); err != nil || string(out) != version {
		t.Errorf("installed version %q (%v), want %s", out, err, version)
	}
	if out, err := exec.Command(installedBinary, "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "autodiscover-proxy ") {
		t.Errorf("%s version: %v %q", installedBinary, err, out)
	}
	// The config the package installs is the one the unit reads, and it is valid.
	unit := "/lib/systemd/system/autodiscover-proxy.service"
	if out, err := exec.Command(installedBinary, "check-config", "-config", "/etc/autodiscover-proxy/config.yaml").CombinedOutput(); err != nil {
		t.Errorf("check-config of the installed config: %v\n%s", err, out)
	}
	if out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
	if fi, err := os.Stat("/var/lib/autodiscover-proxy"); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory: %v %v", fi, err)
	}

	// Enabled, with state in both places a DynamicUser= unit keeps it: an
	// upgrade keeps all of it, a removal disables the unit and keeps the
	// state, a purge removes the state too.
	enabled := "/etc/systemd/system/multi-user.target.wants/autodiscover-proxy.service"
	if out, err := exec.Command("systemctl", "enable", "autodiscover-proxy.service").CombinedOutput(); err != nil {
		t.Fatalf("systemctl enable: %v\n%s", err, out)
	}
	private := "/var/lib/private/autodiscover-proxy"
	state := []string{"/var/lib/autodiscover-proxy/acme/account.key", private + "/acme/account.key"}
	for _, f := range state {
		os.MkdirAll(filepath.Dir(f), 0o700)
		os.WriteFile(f, []byte("state"), 0o600)
	}
	t.Cleanup(func() { os.RemoveAll(private) })
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	if out, err := exec.Command("dpkg", "-i", deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i again (an upgrade): %v\n%s", err, out)
	}
	if !exists(enabled) {
		t.Error("an upgrade disabled the unit")
	}
	if out, err := exec.Command("dpkg", "--remove", "autodiscover-proxy").CombinedOutput(); err != nil {
		t.Fatalf("dpkg --remove: %v\n%s", err, out)
	}
	if exists(enabled) {
		t.Error("removing the package left the unit enabled")
	}
	for _, f := range state {
		if !exists(f) {
			t.Errorf("removing the package (not purging) deleted %s", f)
		}
	}
	if out, err := exec.Command("dpkg", "--purge", "autodiscover-proxy").CombinedOutput(); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out)
	}
	for _, p := range []string{"/var/lib/autodiscover-proxy", private} {
		if exists(p) {
			t.Errorf("purging the package left %s", p)
		}
	}
}
