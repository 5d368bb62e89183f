package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/autodiscover"
	"github.com/autodiscover-proxy/autodiscover-proxy/certs"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// service is one running autodiscover-proxy: the responder, its
// certificates, and what reload and the admin listener need.
type service struct {
	cfgFile string // "" for the embedded default
	log     *slog.Logger
	srv     *autodiscover.Server
	reg     *prometheus.Registry
	reloads *prometheus.CounterVec

	certs certs.Provider // nil when no HTTPS listener runs
	acme  *certs.ACME    // set when certs come from ACME
	files *certs.Files   // set when certs come from files
	store *certs.PGCache // set when ACME keeps its certificates in PostgreSQL
	// servesTLS: an HTTPS listener runs. Without one (behind a
	// TLS-terminating ingress) certificate files only sign profiles, and
	// readiness does not wait for them.
	servesTLS bool

	mu sync.Mutex // serialises reloads
}

func loadConfig(file string) (*config.Config, error) {
	if file == "" {
		return config.Default(), nil
	}
	return config.Load(file)
}

func newService(cfgFile string, cfg *config.Config, withTLS bool, log *slog.Logger) (*service, error) {
	s := &service{cfgFile: cfgFile, log: log, reg: prometheus.NewRegistry(), servesTLS: withTLS}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "autodiscover_config_reloads_total",
		Help: "Config reloads (SIGHUP), by result: success or failure.",
	}, []string{"result"})
	for _, r := range []string{"success", "failure"} {
		s.reloads.WithLabelValues(r) // present from the start, at 0: alerts read increases
	}
	s.reg.MustRegister(s.reloads, &certCollector{s}, buildInfoCollector(), configInfo{s}, certStates{s})
	srv, err := autodiscover.New(cfg)
	if err != nil {
		return nil, err
	}
	srv.Log, srv.Metrics = log, autodiscover.NewMetrics(s.reg)
	s.srv = srv
	// Behind a TLS-terminating ingress (no HTTPS listener), the ingress's
	// certificate files, when configured, still sign the Apple profiles.
	if withTLS || cfg.TLS.CertFile != "" {
		if err := s.newCertificates(cfg); err != nil {
			return nil, err
		}
		srv.Certificates = s.certs // Apple profiles are signed with them
	}
	return s, nil
}

// newCertificates picks the certificate source: ACME, files, or a
// self-signed development certificate.
func (s *service) newCertificates(cfg *config.Config) error {
	switch {
	case cfg.TLS.ACME != nil:
		a := cfg.TLS.ACME
		o := certs.ACMEOptions{DirectoryURL: a.DirectoryURL, Email: a.Email, CacheDir: a.CacheDir, Log: s.log}
		if a.Store == config.StorePostgres {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			defer cancel()
			store, err := certs.NewPGCache(ctx)
			if err != nil {
				return fmt.Errorf("tls.acme.store: postgres: %w (the connection comes from PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD or PGPASSFILE, PGSSLMODE)", err)
			}
			s.store, o.Cache = store, store
		}
		s.acme = certs.NewACME(o, cfg.CertificateHosts())
		s.certs = s.acme
		s.log.Info("certificates from ACME", "directory", a.DirectoryURL, "store", a.Store, "cache_dir", a.CacheDir, "hosts", len(cfg.CertificateHosts()))
	case cfg.TLS.CertFile != "" && !s.servesTLS:
		// Only to sign profiles: files not there yet (the ingress's
		// certificate not yet issued) leave profiles unsigned until they
		// are, and do not keep the service from starting.
		f, loaded := certs.NewFilesPending(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if !loaded {
			s.log.Warn("the certificate files do not load yet: Apple profiles are served unsigned until they do (they are watched)",
				"cert_file", cfg.TLS.CertFile)
		}
		s.files, s.certs = f, f
	case cfg.TLS.CertFile != "":
		f, err := certs.NewFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return err
		}
		s.files, s.certs = f, f
	default:
		hosts := append([]string{"localhost", "127.0.0.1", "::1"}, cfg.CertificateHosts()...)
		c, err := certs.SelfSigned(hosts, time.Now())
		if err != nil {
			return err
		}
		s.certs = certs.NewStatic(c, false)
		s.log.Warn("no tls.cert_file/key_file or tls.acme: using a self-signed certificate, for development only; mail clients will not trust it")
	}
	return nil
}

// tlsConfig is the HTTPS listener's TLS config: TLS 1.2+ unless the config
// allows older, HTTP/2 on (ServeTLS adds h2), tls-alpn-01 with ACME.
func (s *service) tlsConfig(cfg *config.Config) *tls.Config {
	c := &tls.Config{MinVersion: cfg.TLS.MinVersion, GetCertificate: s.certs.GetCertificate}
	if s.acme != nil {
		c.NextProtos = append([]string{"h2", "http/1.1"}, s.acme.NextProtos()...)
	}
	return c
}

// httpHandler is the port-80 handler: ACME http-01 challenges first.
func (s *service) httpHandler() http.Handler {
	if s.acme != nil {
		return s.acme.HTTPHandler(s.srv.HTTPHandler())
	}
	return s.srv.HTTPHandler()
}

// obtain asks the CA for every host's certificate in the background, so a
// DNS or port-80 problem shows in the log at start.
func (s *service) obtain(ctx context.Context) {
	if s.acme == nil {
		return
	}
	hosts := s.srv.Config().CertificateHosts()
	go func() {
		errs, deferred := s.acme.Obtain(ctx, hosts)
		for h, err := range errs {
			s.log.Error("acme: no certificate yet", "host", h, "err", err)
		}
		if deferred > 0 {
			s.log.Info("acme: more hosts lack a certificate; each is obtained at its first handshake", "hosts", deferred, "asked_now", certs.MaxObtain)
		}
	}()
}

// reload reads the config file again and swaps it in whole. A bad config
// is refused with its reason in the log, and the old one keeps serving.
// Certificate files are read again too.
func (s *service) reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.load()
	return s.applyLocked(ctx, cfg, err)
}

// load reads the config file and what it includes.
func (s *service) load() (*config.Config, error) {
	if s.cfgFile == "" {
		return nil, errors.New("no -config file to reload (serving the embedded default)")
	}
	return config.Load(s.cfgFile)
}

// applyLocked puts cfg, as load read it, in use (a config that cannot be
// used keeps the previous one serving), logs and counts the outcome; s.mu
// is held.
func (s *service) applyLocked(ctx context.Context, cfg *config.Config, err error) error {
	if err == nil {
		err = s.swapLocked(cfg)
	}
	if err != nil {
		s.reloads.WithLabelValues("failure").Inc()
		s.log.Error("reload refused; the previous config keeps serving", "err", err)
		return err
	}
	s.reloads.WithLabelValues("success").Inc()
	s.log.Info("config reloaded", "domains", len(s.srv.Config().Domains))
	s.obtain(ctx)
	return nil
}

func (s *service) swapLocked(cfg *config.Config) error {
	old := s.srv.Config()
	if (cfg.TLS.ACME != nil) != (old.TLS.ACME != nil) || cfg.TLS.CertFile != old.TLS.CertFile || cfg.TLS.KeyFile != old.TLS.KeyFile {
		return errors.New("the certificate source (tls.acme, tls.cert_file, tls.key_file) changed: restart to apply it")
	}
	if s.files != nil {
		if err := s.files.Reload(); err != nil && s.servesTLS {
			return err
		} else if err != nil {
			s.log.Warn("the certificate files do not load yet: Apple profiles stay unsigned", "err", err)
		}
	}
	if err := s.srv.Load(cfg); err != nil {
		return err
	}
	if s.acme != nil {
		s.acme.SetHosts(cfg.CertificateHosts())
	}
	return nil
}

// storeTimeout bounds a connection to the certificate store.
const storeTimeout = 30 * time.Second

// ready is nil when a config is loaded and, with an HTTPS listener, a
// certificate is at hand for every configured host.
func (s *service) ready(ctx context.Context) error {
	cfg := s.srv.Config()
	if cfg == nil {
		return errors.New("no config loaded")
	}
	if s.certs == nil || !s.servesTLS {
		return nil // no certificate to serve: readiness does not wait for one
	}
	var missing []string
	for _, h := range cfg.CertificateHosts() {
		if _, err := s.certs.Cached(ctx, h); err != nil {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no valid certificate for %d host(s): %s", len(missing), strings.Join(missing, ", "))
	}
	return nil
}

// adminHandler serves /healthz, /readyz and /metrics, and with withPprof
// Go's profiler under /debug/pprof/.
func (s *service) adminHandler(withPprof bool) http.Handler {
	mux := http.NewServeMux()
	if withPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
		// The shared store's state is reported, not required: a replica
		// whose store went away keeps serving the certificates it holds.
		if s.store != nil {
			if err := s.store.Ping(ctx); err != nil {
				fmt.Fprintf(w, "certificate store: unreachable (%v); the certificates at hand keep serving, new ones wait for it\n", err)
			} else {
				fmt.Fprintln(w, "certificate store: reachable")
			}
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	// Each host's certificate state, for doctor -admin: one line a host,
	// host, state, since, next try, problem, tab-separated.
	mux.HandleFunc("GET /certificates", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/tab-separated-values; charset=utf-8")
		if s.acme == nil {
			return
		}
		for _, h := range s.acme.States() {
			retry := ""
			if !h.Retry.IsZero() {
				retry = h.Retry.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", h.Host, h.State, h.Since.UTC().Format(time.RFC3339), retry, strings.ReplaceAll(h.Problem, "\t", " "))
		}
	})
	return mux
}

// certCollector reports each configured host's certificate expiry.
type certCollector struct{ s *service }

var certExpiry = prometheus.NewDesc("autodiscover_certificate_expiry_timestamp_seconds",
	"Expiry (Unix time) of the certificate served for each configured host; absent when none is at hand.", []string{"host"}, nil)

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- certExpiry }

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	if c.s.certs == nil || c.s.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, h := range c.s.srv.Config().CertificateHosts() {
		cert, err := c.s.certs.Cached(ctx, h)
		if err != nil {
			continue
		}
		if leaf, err := certs.Leaf(cert); err == nil {
			ch <- prometheus.MustNewConstMetric(certExpiry, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()), h)
		}
	}
}

// certStates is autodiscover_certificate_hosts: how many hosts are in each
// certificate state, every state always present (0 when none is).
type certStates struct{ s *service }

var certStatesDesc = prometheus.NewDesc("autodiscover_certificate_hosts",
	"Hosts by certificate state: waiting_dns (no address yet, not ordered), issuing, issued, failing (the last order failed).", []string{"state"}, nil)

func (c certStates) Describe(ch chan<- *prometheus.Desc) { ch <- certStatesDesc }

func (c certStates) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{}
	if c.s.acme != nil {
		for _, h := range c.s.acme.States() {
			counts[h.State]++
		}
	}
	for _, st := range certs.States {
		ch <- prometheus.MustNewConstMetric(certStatesDesc, prometheus.GaugeValue, float64(counts[st]), st)
	}
}
