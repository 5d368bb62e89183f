package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/autodiscover-proxy/autodiscover-proxy/autodiscover"
	"github.com/autodiscover-proxy/autodiscover-proxy/clientcheck"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/doctor"
)

// Operator commands: dns, doctor, render.

func usageFunc(fs *flag.FlagSet, w io.Writer, synopsis, example, about string) func() {
	return func() {
		fmt.Fprintf(w, "usage: autodiscover-proxy %s\n\nexample: %s\n\n%s\n\n", synopsis, example, about)
		fs.PrintDefaults()
	}
}

// defaultTarget is this machine's name, when it is a full one.
func defaultTarget() (string, error) {
	h, err := os.Hostname()
	if err != nil || !strings.Contains(h, ".") {
		return "", errors.New("-target is required: the host name this service runs on (this machine's name is not a full DNS name)")
	}
	return h, nil
}

func dnsCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config `file` (default: the embedded example.com)")
	target := fs.String("target", "", "`host` name this service runs on (default: this machine's full name)")
	format := fs.String("format", "zone", "output `format`: zone or json")
	fs.Usage = usageFunc(fs, stderr, "dns -config FILE [-target HOST] [-format zone|json]",
		"autodiscover-proxy dns -config /etc/autodiscover-proxy/config.yaml -target proxy.example.net",
		"Prints the DNS records every configured domain needs: autodiscover and autoconfig CNAMEs to the\n"+
			"target, the _autodiscover._tcp SRV, RFC 6186 SRV records for the mail servers, and the MX to expect.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "zone" && *format != "json" {
		fmt.Fprintf(stderr, "dns: -format %q: use zone or json\n", *format)
		return errUsage
	}
	cfg, err := loadConfig(*file)
	if err != nil {
		return err
	}
	if *target == "" {
		if *target, err = defaultTarget(); err != nil {
			return err
		}
	}
	if _, err := config.NormalizeDomain(*target); err != nil {
		return fmt.Errorf("-target %q: %v", *target, err)
	}
	records := doctor.Records(cfg, *target)
	if *format == "json" {
		return doctor.WriteJSON(stdout, records)
	}
	return doctor.WriteZone(stdout, records)
}

// parseInterleaved parses flags that may follow positional arguments
// ("doctor -config f contoso.com -json") and returns the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, errUsage
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func doctorCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config `file` (default: the embedded example.com)")
	target := fs.String("target", "", "`host` name this service runs on; the autodiscover and autoconfig names must point at it")
	hosts := fs.String("hosts", doctor.DefaultHostsFile(), "hosts `file` to check for stale entries")
	resolver := fs.String("resolver", "", "DNS server `address` (host:port) to ask (default: the first of /etc/resolv.conf)")
	connect := fs.String("connect", "", "`address` (host:port) to reach the running service at, instead of each name's port 443")
	caFile := fs.String("ca", "", "PEM `file` of CA certificates to trust instead of the system's (private CAs)")
	insecure := fs.Bool("insecure-dev", false, "check a development server: its certificate is not verified (a warning says so)")
	admin := fs.String("admin", "", "the running service's admin `address` (host:port): each host's certificate state (waiting_dns, issuing, issued, failing)")
	skipDNS := fs.Bool("skip-dns", false, "skip the DNS checks")
	skipLive := fs.Bool("skip-live", false, "skip the live checks of the running service")
	asJSON := fs.Bool("json", false, "print the findings as JSON")
	fs.Usage = usageFunc(fs, stderr, "doctor -config FILE [flags] [domain...]",
		"autodiscover-proxy doctor -config /etc/autodiscover-proxy/config.yaml -target proxy.example.net contoso.com",
		"Checks DNS records, the hosts file and the running service for every configured domain (or the ones\n"+
			"named) and prints pass / warn / fail with a one-line fix for each finding. Exits 1 on any failure.")
	names, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*file)
	if err != nil {
		return err
	}
	domains := cfg.Domains
	if len(names) > 0 {
		domains = nil
		for _, n := range names {
			d, ok := cfg.Lookup(n)
			if !ok {
				return fmt.Errorf("%s is not a configured domain", n)
			}
			domains = append(domains, d)
		}
	}
	var findings []doctor.Finding
	if !*skipDNS {
		var r doctor.Resolver
		if *resolver != "" {
			r = &doctor.DNSClient{Server: *resolver}
		} else if r, err = doctor.SystemResolver(); err != nil {
			return err
		}
		findings = append(findings, doctor.CheckDNS(ctx, r, domains, *target)...)
	}
	hostsGiven := false
	fs.Visit(func(f *flag.Flag) { hostsGiven = hostsGiven || f.Name == "hosts" })
	findings = append(doctor.CheckConfig(domains), findings...)
	findings = append(findings, doctor.CheckHosts(*hosts, hostsGiven, domains)...)
	if !*skipLive {
		o := doctor.LiveOptions{Connect: *connect, Insecure: *insecure, UserAgent: "autodiscover-proxy-doctor/" + readBuildInfo().version}
		if *caFile != "" {
			pem, err := os.ReadFile(*caFile)
			if err != nil {
				return fmt.Errorf("-ca: %w", err)
			}
			o.Roots = x509.NewCertPool()
			if !o.Roots.AppendCertsFromPEM(pem) {
				return fmt.Errorf("-ca %s: no PEM certificate in it", *caFile)
			}
		}
		findings = append(findings, doctor.CheckLive(ctx, domains, o)...)
	}
	if *admin != "" {
		findings = append(findings, doctor.CheckCertificateStates(ctx, *admin)...)
	}
	if *asJSON {
		doctor.WriteFindingsJSON(stdout, findings)
	} else {
		doctor.WriteText(stdout, findings)
	}
	if doctor.Failed(findings) {
		return errFindings
	}
	return nil
}

// errFindings: doctor found failures; it has printed them.
var errFindings = errors.New("findings")

func renderCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config `file` (default: the embedded example.com)")
	email := fs.String("email", "", "the user's e-mail `address` (required)")
	client := fs.String("client", "", "the `client`: "+strings.Join(clientcheck.Clients, ", ")+" (required)")
	protocol := fs.String("protocol", "ActiveSync", "Autodiscover v2 `protocol` for -client json: ActiveSync, Ews or AutodiscoverV1")
	var kinds strings.Builder
	for _, c := range clientcheck.Clients {
		fmt.Fprintf(&kinds, "\n  %-16s %s", c, clientcheck.ClientKinds[c])
	}
	fs.Usage = usageFunc(fs, stderr, "render -config FILE -email ADDR -client "+strings.Join(clientcheck.Clients, "|"),
		"autodiscover-proxy render -config /etc/autodiscover-proxy/config.yaml -email jane@contoso.com -client thunderbird",
		"Prints exactly what that client receives for that address, byte for byte the handler's answer\n"+
			"(apple profiles signed when the config has certificate files or an ACME cache). The clients:"+kinds.String())
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *email == "" || *client == "" {
		fmt.Fprintln(stderr, "render: -email and -client are required")
		fs.Usage()
		return errUsage
	}
	probe, err := clientcheck.ProbeFor(*client, *email, *protocol)
	if err != nil {
		fmt.Fprintf(stderr, "render: %v\n", err)
		return errUsage
	}
	addr, err := config.ParseAddress(*email)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*file)
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := newService(*file, cfg, cfg.TLS.ACME != nil || cfg.TLS.CertFile != "", quiet)
	if err != nil {
		return err
	}
	req := httptest.NewRequest(probe.Method, probe.Path, strings.NewReader(probe.Body))
	req.Host = "autodiscover." + addr.Domain
	if *client == "thunderbird" {
		req.Host = "autoconfig." + addr.Domain
	}
	if probe.ContentType != "" {
		req.Header.Set("Content-Type", probe.ContentType)
	}
	for k, v := range probe.Header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	svc.srv.HTTPSHandler().ServeHTTP(w, req)
	stdout.Write(w.Body.Bytes())
	if _, ok := cfg.Lookup(addr.Domain); !ok {
		// Some dialects answer an unknown domain with HTTP 200 and an error
		// document (POX 500): printed above, but no settings for anyone.
		return fmt.Errorf("%s is not configured (no domain or alias in %s): above is the error document clients get", addr.Domain, configName(*file))
	}
	if w.Code != 200 {
		return fmt.Errorf("the answer is HTTP %d", w.Code)
	}
	return nil
}

// configName names a config file in messages.
func configName(file string) string {
	if file == "" {
		return "the embedded default config"
	}
	return file
}

// hashAddressCommand prints the value the logs carry for an address (its
// keyed hash), so that an operator can find a user's lines in the logs of
// every replica: the key is the config's log.address_key_file.
func hashAddressCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hash-address", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config `file` whose log.address_key_file holds the key (required)")
	fs.Usage = usageFunc(fs, stderr, "hash-address -config FILE EMAIL",
		"autodiscover-proxy hash-address -config /etc/autodiscover-proxy/config.yaml jane@contoso.com",
		"Prints the value request lines carry in their address field for EMAIL (h:...), under the key in\n"+
			"log.address_key_file: grep the logs for it.")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return errUsage
	}
	if *file == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "hash-address: -config and one address are required")
		fs.Usage()
		return errUsage
	}
	cfg, err := loadConfig(*file)
	if err != nil {
		return err
	}
	if cfg.Log.AddressKey == nil {
		return fmt.Errorf("%s has no log.address_key_file: each process hashes addresses with a random key, which no one can repeat; "+
			"set address_key_file (a file holding, say, openssl rand -hex 32) on every replica", *file)
	}
	addr, err := config.ParseAddress(fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, autodiscover.HashAddress(cfg.Log.AddressKey, addr.String()))
	return nil
}
