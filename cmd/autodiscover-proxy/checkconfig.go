package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/autodiscover"
	"github.com/autodiscover-proxy/autodiscover-proxy/certs"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

// checkConfig validates a config file, builds every answer from it, and
// prints what would be served.
func checkConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config `file` to check (required)")
	asUser := fs.String("as-user", "", "`user` the service runs as: the files it reads must be readable by it (the unit's DynamicUser is autodiscover-proxy)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: autodiscover-proxy check-config -config FILE [-as-user NAME]\n\n"+
			"example: autodiscover-proxy check-config -config /etc/autodiscover-proxy/config.yaml -as-user autodiscover-proxy\n\n"+
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
	warnings, err := checkCertificates(cfg)
	if err != nil {
		return err
	}
	warnings = append(warnings, exampleWarnings(cfg)...)
	if *asUser != "" {
		problems, err := accessProblems(*file, cfg, *asUser)
		if err != nil {
			return fmt.Errorf("-as-user %s: %w", *asUser, err)
		}
		if len(problems) > 0 {
			return fmt.Errorf("the service could not read its files:\n%s", strings.Join(problems, "\n"))
		}
	}
	printSummary(stdout, *file, cfg)
	for _, w := range warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	return nil
}

// checkCertificates checks what serve would refuse or fail at: certificate
// files that do not load or do not match (an error), a certificate that
// does not name every configured host (a warning: clients refuse those
// hosts), an ACME cache directory serve cannot write (an error).
func checkCertificates(cfg *config.Config) (warnings []string, err error) {
	switch {
	case cfg.TLS.CertFile != "":
		pair, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		leaf, err := certs.Leaf(&pair)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file %s: %w", cfg.TLS.CertFile, err)
		}
		var uncovered []string
		for _, h := range cfg.CertificateHosts() {
			if leaf.VerifyHostname(h) != nil {
				uncovered = append(uncovered, h)
			}
		}
		if len(uncovered) > 0 {
			warnings = append(warnings, fmt.Sprintf("the certificate in %s does not name %s: clients refuse those hosts; add them to the certificate", cfg.TLS.CertFile, strings.Join(uncovered, ", ")))
		}
		if time.Now().After(leaf.NotAfter) {
			warnings = append(warnings, fmt.Sprintf("the certificate in %s expired on %s", cfg.TLS.CertFile, leaf.NotAfter.Format(time.DateOnly)))
		}
	case cfg.TLS.ACME != nil && cfg.TLS.ACME.Store == config.StorePostgres:
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		store, err := certs.NewPGCache(ctx)
		if err != nil {
			return nil, fmt.Errorf("tls.acme.store: postgres: %w; check PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD or PGPASSFILE, PGSSLMODE", err)
		}
		store.Close()
	case cfg.TLS.ACME != nil:
		if err := writableDir(cfg.TLS.ACME.CacheDir); err != nil {
			return nil, fmt.Errorf("tls.acme.cache_dir: %w; serve could keep no account key or certificate", err)
		}
	}
	return warnings, nil
}

// writableDir makes dir as autocert would (0700) and writes a file in it.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".check-config-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
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
			fmt.Fprintf(w, "  %-10s %s\n", "ews", ewsSummary(d, time.Now()))
		}
		if d.OABURL != "" {
			fmt.Fprintf(w, "  %-10s %s\n", "oab", d.OABURL)
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

// ewsSummary says whether the answers offer EWS now, and why.
func ewsSummary(d *config.Domain, now time.Time) string {
	p := d.Provider
	switch {
	case d.EWSAt(now) != "":
		return d.EWSURL + " (ews_access " + d.EWSAccess + ")"
	case d.EWSAccess == config.EWSAccessOff:
		return "off (ews_access off): no answer points a client at EWS"
	case !p.EWSRetired.IsZero() && !now.Before(p.EWSRetired):
		return "off: " + p.DisplayName + " retired EWS on " + p.EWSRetired.Format(time.DateOnly)
	}
	return "off (ews_access auto): " + p.DisplayName + " switched EWS off on " + p.EWSOffFrom.Format(time.DateOnly) +
		"; set ews_access: on if this tenant enabled it for its applications"
}
