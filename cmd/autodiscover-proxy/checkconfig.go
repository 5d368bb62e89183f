package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/autodiscover-proxy/autodiscover-proxy/autodiscover"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

// checkConfig validates a config file, builds every answer from it, and
// prints what would be served.
func checkConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config `file` to check (required)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: autodiscover-proxy check-config -config FILE\n\n"+
			"example: autodiscover-proxy check-config -config /etc/autodiscover-proxy/config.yaml\n\n"+
			"Exits 0 and prints a summary when the file is valid, 1 with every problem when not.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		fmt.Fprintln(stderr, "check-config: -config is required")
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*file)
	if err != nil {
		return err
	}
	// Build every answer too, exactly as serve and SIGHUP do.
	if _, err := autodiscover.New(cfg); err != nil {
		return err
	}
	printSummary(stdout, *file, cfg)
	return nil
}

func printSummary(w io.Writer, file string, cfg *config.Config) {
	fmt.Fprintf(w, "%s: OK, %d domain(s)\n\n", file, len(cfg.Domains))
	for _, d := range cfg.Domains {
		fmt.Fprintf(w, "%s", d.Name)
		if len(d.Aliases) > 0 {
			fmt.Fprintf(w, " (aliases %s)", strings.Join(d.Aliases, ", "))
		}
		fmt.Fprintf(w, ": %s, %q\n", d.Provider.Name, d.DisplayName)
		for _, s := range []struct {
			name string
			srv  *config.Server
		}{{"imap", d.IMAP}, {"pop3", d.POP3}, {"smtp", d.SMTP}} {
			if s.srv != nil {
				fmt.Fprintf(w, "  %-10s %s:%d %s\n", s.name, s.srv.Host, s.srv.Port, s.srv.Security)
			}
		}
		if d.ActiveSyncURL != "" {
			fmt.Fprintf(w, "  %-10s %s\n", "activesync", d.ActiveSyncURL)
		}
		if d.EWSURL != "" {
			fmt.Fprintf(w, "  %-10s %s\n", "ews", d.EWSURL)
		}
		fmt.Fprintf(w, "  %-10s %s\n", "login", d.LoginName)
		fmt.Fprintf(w, "  %-10s %s\n", "outlook", d.OutlookExchange)
	}
	fmt.Fprintln(w)
	switch {
	case cfg.TLS.ACME != nil:
		fmt.Fprintf(w, "certificates: ACME from %s, cache %s\n", cfg.TLS.ACME.DirectoryURL, cfg.TLS.ACME.CacheDir)
	case cfg.TLS.CertFile != "":
		fmt.Fprintf(w, "certificates: %s, %s\n", cfg.TLS.CertFile, cfg.TLS.KeyFile)
	default:
		fmt.Fprintln(w, "certificates: self-signed (development only)")
	}
	fmt.Fprintf(w, "certificate hosts: %s\n", strings.Join(cfg.CertificateHosts(), " "))
}
