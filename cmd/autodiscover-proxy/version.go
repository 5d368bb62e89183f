package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// buildInfo is what the binary knows of its own build: the main module's
// version (a tag, or a pseudo-version from the VCS stamp) and the commit.
type buildInfo struct {
	version, revision, time string
	modified                bool
	goVersion               string
}

func readBuildInfo() buildInfo {
	b := buildInfo{version: "(devel)", revision: "unknown", goVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if bi.Main.Version != "" {
		b.version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.time":
			b.time = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

func (b buildInfo) String() string {
	s := "autodiscover-proxy " + b.version + " (commit " + b.revision
	if b.modified {
		s += ", modified"
	}
	if b.time != "" {
		s += ", " + b.time
	}
	return s + ", " + b.goVersion + ")"
}

func versionCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: autodiscover-proxy version\n\nPrints the version, the commit it was built from and the Go version.\n")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, readBuildInfo())
	return nil
}

// buildInfoCollector is autodiscover_build_info: always 1, the build in its labels.
func buildInfoCollector() prometheus.Collector {
	b := readBuildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "autodiscover_build_info",
		Help:        "The running build: version, commit and Go version, as labels; always 1.",
		ConstLabels: prometheus.Labels{"version": b.version, "revision": b.revision, "goversion": b.goVersion},
	})
	g.Set(1)
	return g
}
