package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/autodiscover"
	"github.com/autodiscover-proxy/autodiscover-proxy/certs"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

// errUsage means the flags were wrong; the flag package has said why.
var errUsage = errors.New("usage")

// shutdownGrace bounds how long in-flight requests may take at stop.
const shutdownGrace = 10 * time.Second

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "config `file` (default: the embedded example.com on microsoft365)")
	httpsAddr := fs.String("https", "127.0.0.1:8443", "HTTPS listen `address`")
	httpAddr := fs.String("http", "127.0.0.1:8080", "plain-HTTP listen `address` (autoconfig and redirects); empty to disable")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: autodiscover-proxy serve [-config FILE] [-https ADDR] [-http ADDR]\n\n"+
			"example: autodiscover-proxy serve -config /etc/autodiscover-proxy/config.yaml -https :443 -http :80\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serve: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg := config.Default()
	if *configFile != "" {
		var err error
		if cfg, err = config.Load(*configFile); err != nil {
			return err
		}
	} else {
		log.Info("no -config given: serving the embedded default (example.com, microsoft365)")
	}

	srv, err := autodiscover.New(cfg)
	if err != nil {
		return err
	}
	srv.Log = log

	cert, err := loadCertificate(cfg, log)
	if err != nil {
		return err
	}
	httpsLn, err := net.Listen("tcp", *httpsAddr)
	if err != nil {
		return fmt.Errorf("listen https: %w", err)
	}
	defer httpsLn.Close()
	srv.HTTPSPort = httpsLn.Addr().(*net.TCPAddr).Port

	servers := []*http.Server{newHTTPServer(srv.HTTPSHandler(), log)}
	servers[0].TLSConfig = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*cert},
	}
	listeners := []net.Listener{tls.NewListener(httpsLn, servers[0].TLSConfig)}
	if *httpAddr != "" {
		httpLn, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			return fmt.Errorf("listen http: %w", err)
		}
		defer httpLn.Close()
		servers = append(servers, newHTTPServer(srv.HTTPHandler(), log))
		listeners = append(listeners, httpLn)
	}
	announce(stdout, cfg, httpsLn.Addr().String(), listeners)

	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func() { errc <- s.Serve(listeners[i]) }()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("stopping: finishing requests in flight", "grace", shutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	return nil
}

// newHTTPServer sets the timeouts every listener needs against slow or
// idle clients.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// loadCertificate uses tls.cert_file/key_file, or makes a self-signed
// development certificate for every configured host.
func loadCertificate(cfg *config.Config, log *slog.Logger) (*tls.Certificate, error) {
	if cfg.TLS.CertFile != "" {
		return certs.FromFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, d := range cfg.Domains {
		for _, n := range d.Names() {
			hosts = append(hosts, n, "autodiscover."+n, "autoconfig."+n)
		}
	}
	log.Warn("no tls.cert_file/key_file: using a self-signed certificate, for development only; mail clients will not trust it")
	return certs.SelfSigned(hosts, time.Now())
}

// announce prints what is served and one command to try.
func announce(w io.Writer, cfg *config.Config, httpsAddr string, lns []net.Listener) {
	fmt.Fprintf(w, "autodiscover-proxy serving %d domain(s) on https://%s", len(cfg.Domains), httpsAddr)
	if len(lns) > 1 {
		fmt.Fprintf(w, " and http://%s", lns[1].Addr())
	}
	fmt.Fprintln(w)
	d := cfg.Domains[0].Name
	fmt.Fprintln(w, "URLs answered:")
	fmt.Fprintln(w, "  POST https  /autodiscover/autodiscover.xml             Outlook, Thunderbird, exchangelib, ActiveSync (POX)")
	fmt.Fprintln(w, "  GET  http   /autodiscover/autodiscover.xml             302 to https (Outlook's HTTP-redirect step)")
	fmt.Fprintln(w, "  GET  https  /autodiscover/autodiscover.json?Email=&Protocol=   Outlook mobile (v2 JSON)")
	fmt.Fprintln(w, "  GET  https  /autodiscover/autodiscover.json/v1.0/<email>?Protocol=")
	fmt.Fprintln(w, "  GET  both   /mail/config-v1.1.xml, /.well-known/autoconfig/mail/config-v1.1.xml, /v1.1/mail/config-v1.1.xml   Thunderbird")
	base := "https://" + httpsAddr
	if len(lns) > 1 {
		base = "http://" + lns[1].Addr().String()
	}
	fmt.Fprintf(w, "Try: curl '%s/mail/config-v1.1.xml?emailaddress=user@%s'\n", base, d)
}
