package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// Error lists every problem found in a config file.
type Error struct {
	Problems []Problem
}

// Problem is one thing wrong in a config file.
type Problem struct {
	File string
	Line int // 0 when unknown
	Path string
	Msg  string
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc += ":" + strconv.Itoa(p.Line)
	}
	if p.Path == "" {
		return loc + ": " + p.Msg
	}
	return loc + ": " + p.Path + ": " + p.Msg
}

func (e *Error) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}

// lineOf is the line of path, 0 when unknown.
func (v *validator) lineOf(path string) int {
	v.ensureLines()
	return v.lines[path]
}

// indexLines records the line of every mapping key and sequence item
// under its path (domains[0].imap.port), so validation can say where.
func indexLines(n *yaml.Node, path string, lines map[string]int) {
	walkValues(n, path, func(p string, key, value *yaml.Node) {
		if key != nil {
			lines[p] = key.Line
		} else {
			lines[p] = value.Line
		}
	})
}

// walkValues calls fn for every mapping value (with its key) and sequence
// item (key nil) below n, parents first, with its path: domains[0].imap.
func walkValues(n *yaml.Node, path string, fn func(path string, key, value *yaml.Node)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkValues(c, path, fn)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			fn(p, n.Content[i], n.Content[i+1])
			walkValues(n.Content[i+1], p, fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			fn(p, nil, c)
			walkValues(c, p, fn)
		}
	}
}

type validator struct {
	file     string
	root     *yaml.Node
	lines    map[string]int // built at the first problem
	problems []Problem
}

// ensureLines indexes the node tree's lines, once, when a problem needs them.
func (v *validator) ensureLines() {
	if v.lines == nil {
		v.lines = map[string]int{}
		if v.root != nil {
			indexLines(v.root, "", v.lines)
		}
	}
}

func (v *validator) addf(path, format string, args ...any) {
	v.ensureLines()
	line, ok := v.lines[path]
	for p := path; !ok && p != ""; { // fall back to the nearest enclosing key
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
		line, ok = v.lines[p]
	}
	v.problems = append(v.problems, Problem{File: v.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) config(f *file, dir string) *Config {
	c := &Config{byName: map[string]*Domain{}}
	c.TLS = v.tls(f.TLS, dir)
	c.Limits = v.limits(f.Limits)
	switch f.Log.Addresses {
	case "", "hash":
	case "plain":
		c.Log.Addresses = true
	default:
		v.addf("log.addresses", "%q: use hash (default: a keyed hash of each address) or plain", f.Log.Addresses)
	}
	c.Log.AddressKeyFile, c.Log.AddressKey = v.addressKey(f.Log.AddressKeyFile, dir)
	for i, p := range f.TrustedProxies {
		pfx, err := parsePrefix(p)
		if err != nil {
			v.addf(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or CIDR network", p)
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx)
	}
	c.include = f.Include
	v.addDomains(c, f.Domains)
	return c
}

// firstUse is where a domain or alias was first configured.
type firstUse struct {
	file, path string
	line       int
}

// addDomains validates domains (of v's file) and adds them to c, whose
// firstUse says where each name was first configured, in any file.
func (v *validator) addDomains(c *Config, domains []fileDomain) {
	if c.firstUse == nil {
		c.firstUse = map[string]firstUse{}
	}
	seen := c.firstUse
	for i := range domains {
		path := "domains[" + strconv.Itoa(i) + "]"
		d := v.domain(&domains[i], path)
		if d == nil {
			continue
		}
		for j, n := range d.Names() {
			p := path + ".name"
			if j > 0 {
				p = fmt.Sprintf("%s.aliases[%d]", path, j-1)
			}
			if first, dup := seen[n]; dup {
				where := fmt.Sprintf("%s (line %d)", first.path, first.line)
				if first.file != v.file {
					where = fmt.Sprintf("%s:%d %s", first.file, first.line, first.path)
				}
				v.addf(p, "%s is already configured at %s: each domain and alias may appear once", n, where)
				continue
			}
			seen[n] = firstUse{v.file, p, v.lineOf(p)}
			c.byName[n] = d
		}
		c.Domains = append(c.Domains, d)
	}
}

func (v *validator) limits(f fileLimits) Limits {
	between := func(p *int, def, min, max int, key, what string) int {
		if p == nil {
			return def
		}
		if *p < min || *p > max {
			v.addf("limits."+key, "%d: use %d to %d (%s; default %d)", *p, min, max, what, def)
			return def
		}
		return *p
	}
	get := func(p *int, def, max int, key, what string) int { return between(p, def, 1, max, key, what) }
	return Limits{
		UpstreamCacheBytes:     get(f.UpstreamCacheMB, DefaultUpstreamCacheMB, 4096, "upstream_cache_mb", "megabytes of upstream answers kept for a minute") << 20,
		RelayPerClientPerHour:  get(f.RelayPerClientPerHour, DefaultRelayPerClientPerHour, 100000, "relay_per_client_per_hour", "sign-ins relayed per client IP and hour"),
		RelayPerAccountPerHour: get(f.RelayPerAccountPerHour, DefaultRelayPerAccountPerHour, 100000, "relay_per_account_per_hour", "sign-ins relayed per address and hour"),
		PagesPerClientPerMinute: get(f.PagesPerClientPerMin, DefaultPagesPerClientPerMinute, 100000, "pages_per_client_per_minute",
			"setup pages and profiles per client IP and minute"),
		ConnectionsPerListener: get(f.ConnectionsPerListener, DefaultConnectionsPerListener, 1000000, "connections_per_listener", "open connections per listener"),
		// At least twice the largest answer (4 MiB), so that one always fits
		// in the large answers' share.
		AnswerMemoryBytes: between(f.AnswerMemoryMB, DefaultAnswerMemoryMB, 8, 65536, "answer_memory_mb", "megabytes of answers being built or written at once") << 20,
		RelayPerMinute:    get(f.RelayPerMinute, DefaultRelayPerMinute, 1000000, "relay_per_minute", "sign-ins relayed per minute, server-wide"),
		ClientIPv6Prefix:  between(f.ClientIPv6Prefix, DefaultClientIPv6Prefix, 32, 128, "client_ipv6_prefix", "bits of an IPv6 address that name one client"),
	}
}

func (v *validator) tls(t fileTLS, dir string) TLS {
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.addf("tls", "cert_file and key_file go together: set both, or neither for a self-signed development certificate")
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) || dir == "" {
			return p
		}
		return filepath.Join(dir, p)
	}
	out := TLS{CertFile: abs(t.CertFile), KeyFile: abs(t.KeyFile), MinVersion: tls.VersionTLS12}
	switch t.MinVersion {
	case "", "1.2":
	case "1.0":
		out.MinVersion = tls.VersionTLS10
	case "1.1":
		out.MinVersion = tls.VersionTLS11
	case "1.3":
		out.MinVersion = tls.VersionTLS13
	default:
		v.addf("tls.min_version", "%q: use 1.2 (default), 1.3, or 1.0/1.1 for very old mail clients", t.MinVersion)
	}
	if a := t.ACME; a != nil {
		if t.CertFile != "" {
			v.addf("tls.acme", "acme and cert_file/key_file exclude each other: choose one source of certificates")
		}
		out.ACME = &ACME{Email: a.Email, Store: a.Store, CacheDir: abs(a.CacheDir), DirectoryURL: a.DirectoryURL}
		switch a.Store {
		case "", StoreDir:
			out.ACME.Store = StoreDir
			if a.CacheDir == "" {
				v.addf("tls.acme", "cache_dir is required: certificates and the account key are kept there across restarts")
			}
		case StorePostgres:
			if a.CacheDir != "" {
				v.addf("tls.acme.cache_dir", "not used with store: postgres (certificates are kept in the database): remove it")
			}
		default:
			v.addf("tls.acme.store", "%q: use dir (cache_dir, one machine) or postgres (shared by replicas; the connection from PGHOST, PGDATABASE, PGUSER, ...)", a.Store)
		}
		if out.ACME.DirectoryURL == "" {
			out.ACME.DirectoryURL = LetsEncrypt
		} else if u, err := url.Parse(a.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
			v.addf("tls.acme.directory_url", "%q is not an https URL", a.DirectoryURL)
		}
		if a.Email != "" {
			if _, err := ParseAddress(a.Email); err != nil {
				v.addf("tls.acme.email", "%v", err)
			}
		}
	}
	return out
}

// minAddressKey is the shortest key address_key_file may hold: 128 bits
// as hex (openssl rand -hex 32 writes 64 characters).
const minAddressKey = 32

// addressKey reads log.address_key_file: the key is the file's content
// less a trailing newline (editors and echo add one). The key is a secret:
// no message quotes it.
func (v *validator) addressKey(file, dir string) (string, []byte) {
	if file == "" {
		return "", nil
	}
	if !filepath.IsAbs(file) && dir != "" {
		file = filepath.Join(dir, file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		v.addf("log.address_key_file", "%v", err)
		return file, nil
	}
	key := bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(key) < minAddressKey {
		v.addf("log.address_key_file", "%s holds %d bytes: use at least %d (openssl rand -hex 32 > %s)", file, len(key), minAddressKey, file)
		return file, nil
	}
	return file, key
}

// parsePrefix reads an address or a CIDR network.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// unknownProvider reports a provider that is not a preset, with the
// nearest name, and then checks the rest of the domain against a preset
// that requires nothing, so that its other problems are reported too.
func (v *validator) unknownProvider(fd *fileDomain, path string) {
	var names []string
	for _, p := range Presets() {
		names = append(names, p.Name)
	}
	switch n := nearest(fd.Provider, names); {
	case fd.Provider == "":
		v.addf(path+".provider", "missing: use %s", presetNames())
	case n != "":
		v.addf(path+".provider", "unknown provider %q: did you mean %s? The providers are %s", fd.Provider, n, presetNames())
	default:
		v.addf(path+".provider", "unknown provider %q: use %s", fd.Provider, presetNames())
	}
	anything := &Server{Host: "unknown-provider.invalid", Port: 993, Security: SecuritySSL}
	placeholder := &Preset{Name: fd.Provider, DisplayName: fd.Provider, IMAP: anything, POP3: anything, SMTP: anything,
		IncomingAuth: []string{AuthOAuth2, AuthPasswordCleartext}, SMTPAuth: []string{AuthOAuth2, AuthPasswordCleartext},
		EWSURL: "https://unknown-provider.invalid/EWS/Exchange.asmx", OutlookExchange: OutlookSettings,
		OutlookRedirectURL: "https://unknown-provider.invalid/autodiscover/autodiscover.xml"}
	d := &Domain{Name: fd.Name, DisplayName: fd.DisplayName, Provider: placeholder, LoginName: fd.LoginName,
		OutlookExchange: fd.OutlookExchange, EWSURL: placeholder.EWSURL}
	if d.DisplayName != "" {
		if err := checkDisplayName(d.DisplayName); err != nil {
			v.addf(path+".display_name", "%v", err)
		}
	}
	for i, a := range fd.Aliases {
		if _, err := NormalizeDomain(a); err != nil {
			v.addf(fmt.Sprintf("%s.aliases[%d]", path, i), "%v", err)
		}
	}
	v.endpoints(d, fd, path)
	v.policies(d, fd, path)
}

// endpoints sets a domain's servers and URLs: the preset's, with the
// file's overrides merged field by field.
func (v *validator) endpoints(d *Domain, fd *fileDomain, path string) {
	preset := d.Provider
	d.IMAP = v.server(preset.IMAP, fd.IMAP, path+".imap")
	d.POP3 = v.server(preset.POP3, fd.POP3, path+".pop3")
	d.SMTP = v.server(preset.SMTP, fd.SMTP, path+".smtp")
	if d.IMAP == nil && d.POP3 == nil {
		v.addf(path, "no incoming server: provider %s needs imap or pop3 given as {host, port, tls}", preset.Name)
	}
	if d.SMTP == nil {
		v.addf(path, "no outgoing server: provider %s needs smtp given as {host, port, tls}", preset.Name)
	}
	if fd.ActiveSync != nil {
		d.ActiveSyncURL = v.httpsURL(fd.ActiveSync.URL, path+".activesync.url")
	}
	if fd.EWS != nil {
		d.EWSURL = v.httpsURL(fd.EWS.URL, path+".ews.url")
	}
	if fd.OAB != nil {
		d.OABURL = v.httpsURL(fd.OAB.URL, path+".oab.url")
	}
}

// policies sets a domain's login form, upstream, SMTP password and
// Outlook policies, the preset's defaults where the file says nothing.
func (v *validator) policies(d *Domain, fd *fileDomain, path string) {
	preset := d.Provider
	switch {
	case d.LoginName == "":
		d.LoginName = LoginEmailAddress
	case d.LoginName == LoginEmailAddress, d.LoginName == LoginLocalPart, netbiosLogin.MatchString(d.LoginName):
	default:
		v.addf(path+".login_name", `%q is not a login-name form: use %s, %s or DOMAIN\%s`,
			d.LoginName, LoginEmailAddress, LoginLocalPart, LoginLocalPart)
	}
	if fd.Upstream != nil {
		d.Upstream = v.upstream(fd.Upstream, path+".upstream")
	}
	switch d.SMTPPassword = fd.SMTPPassword; d.SMTPPassword {
	case "":
		d.SMTPPassword = SMTPPasswordAuto
	case SMTPPasswordAuto, SMTPPasswordOn:
	case SMTPPasswordOff:
		if len(d.SMTPAuth(time.Time{})) == 0 {
			v.addf(path+".smtp_password", "off would leave SMTP with no sign-in method: provider %s signs in to SMTP with a password only", preset.Name)
		}
	default:
		v.addf(path+".smtp_password", "%q: use auto (the provider's dates), on (keep offering password SMTP, e.g. after re-enabling SMTP AUTH for the tenant) or off", d.SMTPPassword)
	}
	switch d.EWSAccess = fd.EWSAccess; d.EWSAccess {
	case "":
		d.EWSAccess = EWSAccessAuto
	case EWSAccessAuto, EWSAccessOff:
	case EWSAccessOn:
		switch {
		case d.EWSURL == "":
			v.addf(path+".ews_access", "on, but provider %s has no EWS: give its URL as ews: {url: ...}", preset.Name)
		case !preset.EWSRetired.IsZero() && !Now().Before(preset.EWSRetired):
			v.addf(path+".ews_access", "on: %s retired EWS on %s; no client can use it now: remove ews_access",
				preset.DisplayName, preset.EWSRetired.Format(time.DateOnly))
		}
	default:
		v.addf(path+".ews_access", "%q: use auto (the provider's dates), on (the tenant enabled EWS for its applications) or off", d.EWSAccess)
	}
	switch d.OutlookExchange {
	case "":
		d.OutlookExchange = preset.OutlookExchange
	case OutlookSettings:
	case OutlookRedirect:
		if preset.OutlookRedirectURL == "" {
			v.addf(path+".outlook_exchange", "redirect needs a provider with its own autodiscover service; provider %s has none: use settings",
				preset.Name)
		}
	default:
		v.addf(path+".outlook_exchange", "%q is not a policy: use %s or %s", d.OutlookExchange, OutlookRedirect, OutlookSettings)
	}
}

var netbiosLogin = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,14}\\%EMAILLOCALPART%$`)

func (v *validator) domain(fd *fileDomain, path string) *Domain {
	name, err := NormalizeDomain(fd.Name)
	if err != nil {
		v.addf(path+".name", "%v", err)
		return nil
	}
	preset, ok := presets[fd.Provider]
	if !ok {
		v.unknownProvider(fd, path)
		return nil
	}
	if preset.FromExchangeHost {
		preset = v.exchangePreset(preset, fd.ExchangeHost, path+".exchange_host")
	} else if fd.ExchangeHost != "" {
		v.addf(path+".exchange_host", "only provider %s takes exchange_host; provider %s has its own servers (override them with imap, pop3, smtp, activesync, ews)",
			ProviderExchange, preset.Name)
	}
	d := &Domain{
		Name:            name,
		DisplayName:     fd.DisplayName,
		Provider:        preset,
		LoginName:       fd.LoginName,
		OutlookExchange: fd.OutlookExchange,
		ACMEApex:        fd.ACMEApex,
		ActiveSyncURL:   preset.ActiveSyncURL,
		EWSURL:          preset.EWSURL,
		OABURL:          preset.OABURL,
	}
	if preset.FromExchangeHost {
		d.ExchangeHost = preset.IMAP.Host
	}
	if d.DisplayName == "" {
		d.DisplayName = UnicodeDomain(name) // for people: bücher.example
	} else if err := checkDisplayName(d.DisplayName); err != nil {
		v.addf(path+".display_name", "%v", err)
	}
	for i, a := range fd.Aliases {
		n, err := NormalizeDomain(a)
		if err != nil {
			v.addf(fmt.Sprintf("%s.aliases[%d]", path, i), "%v", err)
			continue
		}
		d.Aliases = append(d.Aliases, n)
	}
	v.endpoints(d, fd, path)
	v.policies(d, fd, path)
	return d
}

// exchangePreset is the exchange preset with the domain's exchange_host
// filled in: the server names and Exchange's default URLs under it.
func (v *validator) exchangePreset(p *Preset, host, path string) *Preset {
	if host == "" {
		v.addf(path, "provider %s needs exchange_host: the public name of the Exchange server (mail.example.com)", p.Name)
		host = "exchange-host.invalid" // keeps the other checks going
	} else if h, err := normalizeServerHost(host); err != nil {
		v.addf(path, "%v", err)
		host = "exchange-host.invalid"
	} else {
		host = h
		v.notConsumer(h, path)
	}
	q := *p
	with := func(s *Server) *Server { c := *s; c.Host = host; return &c }
	q.IMAP, q.POP3, q.SMTP = with(p.IMAP), with(p.POP3), with(p.SMTP)
	q.ActiveSyncURL = "https://" + host + exchangeActiveSyncPath
	q.EWSURL = "https://" + host + exchangeEWSPath
	q.OABURL = "https://" + host + exchangeOABPath
	return &q
}

// checkDisplayName keeps display names to printable text: they reach XML,
// JSON and HTML, and private-use characters are the answer templates' marks.
func checkDisplayName(s string) error {
	if len(s) > 256 {
		return errors.New("longer than 256 bytes")
	}
	if !utf8.ValidString(s) {
		return errors.New("not UTF-8")
	}
	for _, r := range s {
		if !unicode.IsPrint(r) && r != ' ' || unicode.In(r, unicode.Co) {
			return fmt.Errorf("character %U not allowed", r)
		}
	}
	return nil
}

// server merges a per-domain override onto the preset's server, field by
// field, and validates the result. It returns nil when neither exists.
func (v *validator) server(preset *Server, o *fileServer, path string) *Server {
	if preset == nil && o == nil {
		return nil
	}
	s := Server{}
	if preset != nil {
		s = *preset
	}
	if o != nil {
		if o.Host != "" {
			s.Host = o.Host
		}
		if o.Port != 0 {
			s.Port = o.Port
		}
		if o.TLS != "" {
			s.Security = Security(o.TLS)
		}
	}
	if h, err := normalizeServerHost(s.Host); err != nil {
		v.addf(path+".host", "%v", err)
	} else {
		s.Host = h
		v.notConsumer(h, path+".host")
	}
	switch {
	case s.Port == 0:
		v.addf(path+".port", "missing: give the port (IMAP 993 with tls: ssl or 143 with starttls; POP3 995 or 110; SMTP 465 or 587)")
	case s.Port < 1 || s.Port > 65535:
		v.addf(path+".port", "%d is not a TCP port (1-65535)", s.Port)
	}
	switch s.Security {
	case SecuritySSL, SecurityStartTLS, SecurityNone:
	case "":
		v.addf(path+".tls", "missing: use ssl (implicit TLS), starttls or none")
	default:
		v.addf(path+".tls", "%q is not a tls mode: use ssl (implicit TLS), starttls or none", s.Security)
	}
	return &s
}

func normalizeServerHost(h string) (string, error) {
	if strings.TrimSpace(h) == "" {
		return "", errors.New("missing host")
	}
	n, err := NormalizeDomain(h)
	if err != nil {
		return "", fmt.Errorf("not a host name: %v", err)
	}
	return n, nil
}

func (v *validator) httpsURL(raw, path string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		v.addf(path, "%q is not an https URL of the form https://host/path", raw)
		return raw
	}
	v.notConsumer(u.Hostname(), path)
	return raw
}

func (v *validator) upstream(fu *fileUpstream, path string) *Upstream {
	u := &Upstream{URL: fu.URL, Timeout: DefaultUpstreamTimeout, RelayAuth: fu.RelayAuth, RedirectHosts: map[string]bool{}}
	pu, err := url.Parse(fu.URL)
	if err != nil || pu.Scheme != "https" || pu.Host == "" || pu.User != nil {
		v.addf(path+".url", "%q is not an https URL: the upstream gets users' Authorization headers, so only TLS will do", fu.URL)
	} else {
		u.Host = strings.ToLower(pu.Hostname())
		u.RedirectHosts[u.Host] = true
		v.notConsumer(u.Host, path+".url")
	}
	if fu.Timeout != "" {
		t, err := time.ParseDuration(fu.Timeout)
		if err != nil || t <= 0 || t > maxUpstreamTimeout {
			v.addf(path+".timeout", "%q: use a duration up to %s, such as 5s", fu.Timeout, maxUpstreamTimeout)
		} else {
			u.Timeout = t
		}
	}
	for i, h := range fu.RedirectHosts {
		n, err := normalizeServerHost(h)
		if err != nil {
			v.addf(fmt.Sprintf("%s.redirect_hosts[%d]", path, i), "%v", err)
			continue
		}
		v.notConsumer(n, fmt.Sprintf("%s.redirect_hosts[%d]", path, i))
		u.RedirectHosts[n] = true
	}
	return u
}

// notConsumer refuses consumer Outlook.com/Hotmail hosts (consumerHosts).
func (v *validator) notConsumer(host, path string) {
	if IsConsumerHost(host) {
		v.addf(path, "%s is a consumer Outlook.com/Hotmail endpoint. Exchange Online and Outlook.com share the "+
			"outlook.com namespace, and business mailboxes cannot sign in to consumer servers: use the business "+
			"endpoints (outlook.office365.com for IMAP/POP/ActiveSync/EWS, smtp.office365.com for SMTP)", host)
	}
}
