package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/pires/go-proxyproto"
)

// errUsage means the flags were wrong; the flag package has said why.
var errUsage = errors.New("usage")

// shutdownGrace bounds how long in-flight requests may take at stop.
const shutdownGrace = 10 * time.Second

// certWatchInterval is how often certificate files are checked for change.
const certWatchInterval = 30 * time.Second

// serveOptions are serve's flags.
type serveOptions struct {
	config, https, http, admin, logFormat string
	publicHTTPSPort                       int
	pprof                                 bool
}

// serveFlags defines serve's flags; deploy files are checked against it.
func serveFlags(stderr io.Writer) (*flag.FlagSet, *serveOptions) {
	o := &serveOptions{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "config `file` (default: the embedded example.com on microsoft365)")
	fs.StringVar(&o.https, "https", "127.0.0.1:8443", "HTTPS listen `address`; empty when a TLS-terminating proxy sends to -http")
	fs.StringVar(&o.http, "http", "127.0.0.1:8080", "plain-HTTP listen `address` (ACME http-01, autoconfig, redirects); empty to disable")
	// 9612: free in Prometheus's default port allocations list, where
	// node_exporter holds 9100 on most monitored hosts.
	fs.StringVar(&o.admin, "admin", "127.0.0.1:9612", "admin listen `address` for /healthz, /readyz and /metrics; empty to disable")
	fs.StringVar(&o.logFormat, "log-format", "text", "log `format`: text or json")
	fs.IntVar(&o.publicHTTPSPort, "public-https-port", 0, "the `port` clients reach the HTTPS listener on, named in redirects and links (default 443; on a loopback -https, its own port)")
	fs.BoolVar(&o.pprof, "pprof", false, "also serve Go's profiler at /debug/pprof/ on the admin listener")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: autodiscover-proxy serve [-config FILE] [-https ADDR] [-http ADDR] [-admin ADDR] [-log-format text|json]\n\n"+
			"example: autodiscover-proxy serve -config /etc/autodiscover-proxy/config.yaml -https :443 -http :80\n\n"+
			"SIGHUP reloads the config and certificate files; SIGTERM stops after in-flight requests.\n\n")
		fs.PrintDefaults()
	}
	return fs, o
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := serveFlags(stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logOut := newLogWriter(stderr)
	defer logOut.Close()
	log, err := newLogger(o.logFormat, logOut)
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return errUsage
	}
	setMemoryLimit(log, memlimit.FromCgroup)
	cfg, err := loadConfig(o.config)
	if err != nil {
		return err
	}
	svc, err := newService(o.config, cfg, o.https != "", log)
	if err != nil {
		return err
	}
	if o.config == "" {
		log.Info("no -config given: serving the embedded default (example.com, microsoft365)")
	}
	if o.https == "" && o.http != "" && len(cfg.TrustedProxies) == 0 {
		log.Warn("-https is empty but trusted_proxies is too: behind a TLS-terminating proxy, requests that reached it over https are answered as plain HTTP; list the proxy's addresses in trusted_proxies")
	}

	// Listen first, so the ports are known (and printed) before serving.
	ls, err := listenAll(o, svc, cfg, log)
	defer ls.close()
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	announce(stdout, cfg, ls.listeners, ls.https, ls.http)
	logOut.Flush() // what start-up said, at once
	runCtx, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	errc := ls.serve(runCtx)
	if svc.files != nil {
		go svc.files.Watch(runCtx, certWatchInterval, log)
	}
	if o.config != "" {
		go func() {
			if err := svc.watchConfig(runCtx); err != nil {
				log.Warn("the config files are not watched: changes need SIGHUP", "err", err)
			}
		}()
	}
	svc.obtain(runCtx)

wait:
	for {
		select {
		case err := <-errc:
			return fmt.Errorf("serve: %w", err)
		case <-hup:
			svc.reload(runCtx) // logs and counts its own outcome
			logOut.Flush()
		case <-ctx.Done():
			break wait
		}
	}
	log.Info("stopping: no new connections; finishing requests in flight", "grace", shutdownGrace)
	if err := ls.shutdown(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// listenerSet is serve's listeners, each with its server and its
// connection cap; https and http are nil when not served.
type listenerSet struct {
	servers     []*http.Server
	listeners   []net.Listener
	caps        []*connCap
	https, http net.Listener
}

// listenAll opens the HTTPS, plain-HTTP and admin listeners the flags ask
// for, each capped at limits.connections_per_listener.
func listenAll(o *serveOptions, svc *service, cfg *config.Config, log *slog.Logger) (*listenerSet, error) {
	ls := &listenerSet{}
	listen := func(name, addr string, h http.Handler) (*http.Server, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", name, err)
		}
		if name != "admin" {
			ln = proxyProtocol(ln, svc)
		}
		s := newHTTPServer(h, log, serverTimeouts)
		limit := newConnCap(cfg.Limits.ConnectionsPerListener)
		s.ConnState = limit.ConnState
		ls.caps = append(ls.caps, limit)
		ls.listeners = append(ls.listeners, limit.Listener(ln))
		ls.servers = append(ls.servers, s)
		return s, nil
	}
	if o.https != "" {
		s, err := listen("https", o.https, svc.srv.HTTPSHandler())
		if err != nil {
			return ls, err
		}
		s.TLSConfig = svc.tlsConfig(cfg)
		ls.https = ls.listeners[len(ls.listeners)-1]
		svc.srv.HTTPSPort = publicHTTPSPort(o.publicHTTPSPort, ls.https.Addr().(*net.TCPAddr))
	}
	if o.http != "" {
		if _, err := listen("http", o.http, svc.httpHandler()); err != nil {
			return ls, err
		}
		ls.http = ls.listeners[len(ls.listeners)-1]
	}
	if o.admin != "" {
		if _, err := listen("admin", o.admin, svc.adminHandler(o.pprof)); err != nil {
			return ls, err
		}
	}
	if ls.https == nil && ls.http == nil {
		return ls, errors.New("nothing to serve: both -https and -http are empty")
	}
	return ls, nil
}

// proxyProtocol lets a connection from a trusted proxy begin with a PROXY
// protocol header (v1 or v2, HAProxy's send-proxy and send-proxy-v2): the
// client address in it is then the connection's, and the per-client limits
// key on it behind a TCP front that passes TLS through. A connection from
// anyone else is not looked at: a header there is the client's first bytes,
// which TLS or HTTP refuse.
func proxyProtocol(ln net.Listener, svc *service) net.Listener {
	return &proxyproto.Listener{
		Listener: ln,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if a, ok := o.Upstream.(*net.TCPAddr); ok && config.TrustedProxy(a.AddrPort().Addr(), svc.srv.Config().TrustedProxies) {
				return proxyproto.USE, nil // a header if it sends one
			}
			return proxyproto.SKIP, nil
		},
		ReadHeaderTimeout: serverTimeouts.readHeader,
	}
}

// serve starts every server and its cap's shedding until ctx ends; a
// server that stops on its own sends its error.
func (ls *listenerSet) serve(ctx context.Context) <-chan error {
	for _, c := range ls.caps {
		go c.Run(ctx)
	}
	errc := make(chan error, len(ls.servers))
	for i, s := range ls.servers {
		ln := ls.listeners[i]
		go func() {
			if s.TLSConfig != nil {
				errc <- s.ServeTLS(ln, "", "")
			} else {
				errc <- s.Serve(ln)
			}
		}()
	}
	return errc
}

// shutdown stops every server, letting requests in flight finish within
// shutdownGrace.
func (ls *listenerSet) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	var errs []error
	for _, s := range ls.servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

func (ls *listenerSet) close() {
	for _, l := range ls.listeners {
		l.Close()
	}
}

// publicHTTPSPort is the port clients reach HTTPS on: the one given, else
// 443 (the listener sits behind a port mapping, a load balancer or an
// ingress), but in development on loopback the listener's own port.
func publicHTTPSPort(given int, ln *net.TCPAddr) int {
	switch {
	case given != 0:
		return given
	case ln.IP.IsLoopback():
		return ln.Port
	}
	return 443
}

// parseFlags parses and refuses stray arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// errHelp means -h was asked for and printed.
var errHelp = errors.New("help")

// newLogger is slog's own text or JSON handler on w.
func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("-log-format %q: use text or json", format)
}

// timeouts bound what one client can hold a listener's connection for.
type timeouts struct {
	// readHeader bounds the TLS handshake and a request's header;
	// read bounds header and body together (a body is at most 64 KiB).
	readHeader, read time.Duration
	// write bounds writing the answer, from the end of the request header.
	write time.Duration
	// idle is how long a kept-alive connection may wait for its next request.
	idle time.Duration
}

// serverTimeouts are every listener's timeouts. Autodiscover clients send
// a few small requests, each usually on a new connection: a client slower
// than these is broken or hostile.
var serverTimeouts = timeouts{readHeader: 5 * time.Second, read: 10 * time.Second, write: 10 * time.Second, idle: 60 * time.Second}

// newHTTPServer is a listener's server with http.Server's own timeouts
// (net/http bounds the TLS handshake by the smallest of them) and a 16 KiB
// limit on request headers.
func newHTTPServer(h http.Handler, log *slog.Logger, t timeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    16 << 10,
		// A client needs a stream or two; more in flight on one connection
		// only multiplies its cost (RFC 9113 §5.1.2).
		HTTP2:    &http.HTTP2Config{MaxConcurrentStreams: 16},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// setMemoryLimit sets the Go runtime's soft memory limit to 90% of the
// memory limit the provider reports (in serve, the container's cgroup), so
// that the collector works harder before the kernel would kill the
// process. A GOMEMLIMIT set by the operator wins; without a limit, Go's
// default (none) stays.
func setMemoryLimit(log *slog.Logger, provider memlimit.Provider) {
	limit, err := memlimit.Set(memlimit.WithProvider(provider))
	switch {
	case errors.Is(err, memlimit.ErrCgroupsNotSupported), errors.Is(err, memlimit.ErrNoCgroup):
	case err != nil:
		log.Warn("memory limit: the container's could not be read; Go's default applies", "err", err)
	case limit > 0 && limit < math.MaxInt64:
		log.Info("memory limit", "GOMEMLIMIT", limit)
	}
}

// announce prints what is served and one command to try.
func announce(w io.Writer, cfg *config.Config, all []net.Listener, httpsLn, httpLn net.Listener) {
	var on []string
	if httpsLn != nil {
		on = append(on, "https://"+httpsLn.Addr().String())
	}
	if httpLn != nil {
		on = append(on, "http://"+httpLn.Addr().String())
	}
	fmt.Fprintf(w, "autodiscover-proxy serving %d domain(s) on %s\n", len(cfg.Domains), strings.Join(on, " and "))
	if admin := all[len(all)-1]; admin != httpsLn && admin != httpLn {
		fmt.Fprintf(w, "admin: http://%s/healthz, /readyz, /metrics\n", admin.Addr())
	}
	fmt.Fprintln(w, "URLs answered:")
	fmt.Fprintln(w, "  POST https  /autodiscover/autodiscover.xml             Outlook, Thunderbird, exchangelib, ActiveSync (POX)")
	fmt.Fprintln(w, "  GET  http   /autodiscover/autodiscover.xml             302 to https (Outlook's HTTP-redirect step)")
	fmt.Fprintln(w, "  GET  https  /autodiscover/autodiscover.json?Email=&Protocol=   Outlook mobile (v2 JSON)")
	fmt.Fprintln(w, "  GET  https  /autodiscover/autodiscover.json/v1.0/<email>?Protocol=")
	fmt.Fprintln(w, "  POST https  /autodiscover/autodiscover.svc             EWS clients, Outlook for Mac (SOAP)")
	fmt.Fprintln(w, "  GET  both   /mail/config-v1.1.xml, /.well-known/autoconfig/mail/config-v1.1.xml, /v1.1/mail/config-v1.1.xml   Thunderbird")
	fmt.Fprintln(w, "  GET  https  /mobileconfig?email=                       iPhone, iPad, Mac (configuration profile)")
	fmt.Fprintln(w, "  GET  https  / and /setup                               people: setup page with every client's settings")
	d := cfg.Domains[0].Name
	if httpLn != nil {
		fmt.Fprintf(w, "Try: curl 'http://%s/mail/config-v1.1.xml?emailaddress=user@%s'\n", httpLn.Addr(), d)
	} else {
		fmt.Fprintf(w, "Try: curl -k 'https://%s/mail/config-v1.1.xml?emailaddress=user@%s'\n", httpsLn.Addr(), d)
	}
}
