// Package pgtest starts a throw-away PostgreSQL server for a test: Debian's
// server binaries, a cluster in a temporary directory, reached only over a
// Unix socket in that directory, stopped and removed when the test ends.
// Nothing outside the directory changes.
package pgtest

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bin finds a PostgreSQL server program: on PATH, else in Debian's
// versioned directory, the newest.
func bin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	slices.Sort(found)
	if len(found) == 0 {
		return ""
	}
	return found[len(found)-1]
}

// Start runs a server and returns the libpq environment that reaches it
// (PGHOST, PGUSER, PGDATABASE, PGSSLMODE). Without the server programs the
// test fails under CI (.ci/run installs them) and is skipped elsewhere.
func Start(t testing.TB) []string {
	t.Helper()
	env, _ := start(t)
	return env
}

// start is Start, and a function that stops the server before the test
// ends (a store that goes away).
func start(t testing.TB) (env []string, stop func()) {
	t.Helper()
	initdb, postgres := bin("initdb"), bin("postgres")
	if initdb == "" || postgres == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("PostgreSQL's server programs are not installed: .ci/run installs Debian's postgresql")
		}
		t.Skip("PostgreSQL's server programs are not installed (apt-get install postgresql)")
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // the socket is reached by others (a container's user); the data stays 0700
	// PostgreSQL refuses to run as root: as root, run it as its own user.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			u, err = user.Lookup("nobody")
		}
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		os.Chown(dir, uid, gid)
	}
	run := func(args ...string) *exec.Cmd {
		c := exec.Command(args[0], args[1:]...)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		c.Env = append(os.Environ(), "LC_ALL=C")
		return c
	}
	data := filepath.Join(dir, "data")
	if out, err := run(initdb, "-D", data, "-U", "autodiscover", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	srv := run(postgres, "-D", data, "-k", dir, "-c", "listen_addresses=", "-c", "fsync=off", "-c", "max_connections=200")
	log, _ := os.Create(filepath.Join(dir, "server.log"))
	srv.Stdout, srv.Stderr = log, log
	if err := srv.Start(); err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { srv.Wait(); close(exited) }()
	stop = func() {
		srv.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			srv.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(func() {
		stop()
		os.RemoveAll(dir)
	})
	// Ready when its postmaster.pid says so (the status line, PostgreSQL
	// 10 and later), not merely when its socket exists.
	pid := filepath.Join(data, "postmaster.pid")
	for deadline := time.Now().Add(60 * time.Second); ; {
		if b, err := os.ReadFile(pid); err == nil && strings.Contains(string(b), "\nready") {
			break
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("postgres exited:\n%s", b)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("postgres made no socket in a minute:\n%s", b)
		}
	}
	return []string{"PGHOST=" + dir, "PGUSER=autodiscover", "PGDATABASE=postgres", "PGSSLMODE=disable"}, stop
}

// Setenv starts a server and points this process's libpq environment at
// it; stop stops the server before the test ends.
func Setenv(t *testing.T) (stop func()) {
	env, stop := start(t)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return stop
}
