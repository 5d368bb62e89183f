// Package systemtest gates the tests that use or change a real system
// component (dpkg installs a package, podman builds and runs an image,
// chromium renders the setup page): they run only with
// AUTODISCOVER_SYSTEM_TESTS=1, which .ci/run sets, so that a newcomer's
// first `go test ./...` changes nothing outside the checkout's temporary
// directories and finishes in minutes.
package systemtest

import (
	"os"
	"os/exec"
	"testing"
)

// Env is the variable that turns system tests on.
const Env = "AUTODISCOVER_SYSTEM_TESTS"

// Require skips t, saying in one line what it skipped, unless system
// tests are on.
func Require(t testing.TB, what string) {
	t.Helper()
	if os.Getenv(Env) != "1" {
		t.Skipf("system test skipped (%s): set %s=1 to run it", what, Env)
	}
}

// Tool is the path of the first of names on PATH. When none is there the
// test fails under CI (where .ci/run installs it, with install naming the
// packages) and is skipped elsewhere.
func Tool(t testing.TB, install string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not installed: .ci/run installs Debian's %s", names[0], install)
	}
	t.Skipf("%s not installed (apt-get install %s)", names[0], install)
	return ""
}
