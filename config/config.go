// Package config reads the autodiscover-proxy config file, applies the
// provider presets and answers which domains are served.
package config

import (
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// Security is how a client protects a connection: implicit TLS, STARTTLS
// or nothing. The values are the config file's `tls:` values.
type Security string

const (
	SecuritySSL      Security = "ssl"
	SecurityStartTLS Security = "starttls"
	SecurityNone     Security = "none"
)

// Server is one IMAP, POP3 or SMTP endpoint.
type Server struct {
	Host     string
	Port     int
	Security Security
}

// Login-name forms. Thunderbird understands the placeholders itself; the
// other dialects get them filled in per request.
const (
	LoginEmailAddress = "%EMAILADDRESS%"
	LoginLocalPart    = "%EMAILLOCALPART%"
)

// Config is a loaded, validated config.
type Config struct {
	TLS     TLS
	Log     Log
	Domains []*Domain // in file order
	// TrustedProxies are the networks whose X-Forwarded-For and
	// X-Forwarded-Proto headers are believed.
	TrustedProxies []netip.Prefix
	byName         map[string]*Domain
}

// TLS is the `tls:` section. Relative file names are resolved against the
// config file's directory.
type TLS struct {
	CertFile   string
	KeyFile    string
	MinVersion uint16 // tls.VersionTLS12 unless the file asks for older
	ACME       *ACME  // nil: no ACME
}

// ACME is `tls.acme`: certificates from an ACME CA through autocert.
type ACME struct {
	Email        string
	CacheDir     string
	DirectoryURL string
}

// LetsEncrypt is the default ACME directory (Let's Encrypt production).
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// Log is the `log:` section.
type Log struct {
	// Addresses: false logs e-mail addresses as a keyed hash; true as they are.
	Addresses bool
}

// CertificateHosts are the TLS host names served: autodiscover.<d> and
// autoconfig.<d> for every domain and alias, plus <d> itself for domains
// with acme_apex. The ACME host policy is exactly this list.
func (c *Config) CertificateHosts() []string {
	var hosts []string
	for _, d := range c.Domains {
		for _, n := range d.Names() {
			hosts = append(hosts, "autodiscover."+n, "autoconfig."+n)
			if d.ACMEApex {
				hosts = append(hosts, n)
			}
		}
	}
	return hosts
}

// Domain is one served mail domain with its preset applied.
type Domain struct {
	Name        string   // A-label, lower case
	Aliases     []string // A-labels, lower case
	DisplayName string
	Provider    *Preset
	IMAP        *Server // nil when not offered
	POP3        *Server
	SMTP        *Server
	// ActiveSyncURL and EWSURL are empty when not offered.
	ActiveSyncURL string
	EWSURL        string
	// LoginName is %EMAILADDRESS%, %EMAILLOCALPART% or NETBIOS\%EMAILLOCALPART%.
	LoginName       string
	OutlookExchange string
	// ACMEApex adds <domain> itself to the certificate hosts, for clients
	// that try https://<domain>/autodiscover/autodiscover.xml first.
	ACMEApex bool
	// Upstream, when set, forwards POX requests to another autodiscover
	// service and corrects its answers; nil answers locally.
	Upstream *Upstream
}

// Upstream is a domain's `upstream:` section.
type Upstream struct {
	URL     string
	Host    string // of URL, lower case: the only host Authorization goes to
	Timeout time.Duration
	// RelayAuth relays an upstream 401 (with WWW-Authenticate) to the client
	// instead of answering locally.
	RelayAuth bool
	// RedirectHosts are the https hosts whose redirectUrl answers are
	// followed; by default only Host.
	RedirectHosts map[string]bool
}

// Upstream timeout bounds.
const (
	DefaultUpstreamTimeout = 5 * time.Second
	maxUpstreamTimeout     = 30 * time.Second
)

// Names returns the domain name followed by its aliases.
func (d *Domain) Names() []string { return append([]string{d.Name}, d.Aliases...) }

// SMTPAuth returns the SMTP sign-in methods offered at time t.
func (d *Domain) SMTPAuth(t time.Time) []string {
	p := d.Provider
	if p.SMTPPasswordUntil.IsZero() || !t.Before(p.SMTPPasswordUntil) {
		return p.SMTPAuth
	}
	return append(append([]string(nil), p.SMTPAuth...), AuthPasswordCleartext)
}

// LoginFor fills the login-name form for one address.
func (d *Domain) LoginFor(a Address) string {
	switch d.LoginName {
	case LoginLocalPart:
		return a.Local
	case LoginEmailAddress:
		return a.String()
	}
	// NETBIOS\%EMAILLOCALPART%
	return strings.TrimSuffix(d.LoginName, LoginLocalPart) + a.Local
}

// Lookup returns the domain served for name (a domain or an alias, in any
// case or as a U-label). The service answers for nothing else.
func (c *Config) Lookup(name string) (*Domain, bool) {
	if d, ok := c.byName[name]; ok { // fast path: already normalised
		return d, true
	}
	n, err := NormalizeDomain(name)
	if err != nil {
		return nil, false
	}
	d, ok := c.byName[n]
	return d, ok
}

//go:embed default.yaml
var defaultYAML []byte

// Default returns the embedded config: example.com on the microsoft365
// preset, so the binary answers something without any file.
func Default() *Config {
	c, err := Parse(defaultYAML, "embedded default", "")
	if err != nil {
		panic("embedded default config: " + err.Error())
	}
	return c
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, filepath.Dir(path))
}

// maxConfigSize bounds what Parse accepts; 100,000 domains fit easily.
const maxConfigSize = 64 << 20

// Parse validates a config document. name is used in messages; dir is the
// directory relative file names are resolved against.
func Parse(data []byte, name, dir string) (*Config, error) {
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxConfigSize)
	}
	if len(data) > chunkedAbove {
		if c, ok := parseChunked(data, name, dir, chunkItems); ok {
			return c, nil
		}
	}
	// One pass of the YAML library: a node tree (which keeps line numbers),
	// decoded from there; unknown keys are found by walking the tree.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 || root.Content[0].Kind == yaml.ScalarNode && root.Content[0].Value == "" {
		return nil, fmt.Errorf("%s: empty config: it needs at least one entry under domains:", name)
	}
	v := validator{file: name, root: &root}
	v.knownKeys(root.Content[0], reflect.TypeOf(file{}), "")
	if len(v.problems) > 0 {
		return nil, &Error{Problems: v.problems}
	}
	var f file
	if err := root.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, yamlError(err))
	}
	c := v.config(&f, dir)
	if len(v.problems) > 0 {
		return nil, &Error{Problems: v.problems}
	}
	return c, nil
}

// yamlKeys are a struct's yaml keys, in field order, and their types.
type yamlKeys struct {
	names []string
	types map[string]reflect.Type
}

var yamlKeysCache sync.Map // reflect.Type -> *yamlKeys

func yamlKeysOf(t reflect.Type) *yamlKeys {
	if ks, ok := yamlKeysCache.Load(t); ok {
		return ks.(*yamlKeys)
	}
	ks := &yamlKeys{types: map[string]reflect.Type{}}
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			ks.types[tag] = t.Field(i).Type
			ks.names = append(ks.names, tag)
		}
	}
	yamlKeysCache.Store(t, ks)
	return ks
}

// knownKeys reports every mapping key that names no field of t (by its
// yaml tag), with its line: a misspelt key must not be ignored silently.
func (v *validator) knownKeys(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		ks := yamlKeysOf(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := k.Value
			if path != "" {
				p = path + "." + p
			}
			ft, ok := ks.types[k.Value]
			if !ok {
				v.problems = append(v.problems, Problem{File: v.file, Line: k.Line, Path: p,
					Msg: "unknown key; the keys here are " + strings.Join(ks.names, ", ")})
				continue
			}
			v.knownKeys(n.Content[i+1], ft, p)
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, c := range n.Content {
			v.knownKeys(c, t.Elem(), path+"["+strconv.Itoa(i)+"]")
		}
	}
}

// yamlError turns the YAML library's multi-line type error into one line
// per problem, keeping its line numbers.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return err
}

// The file's shape. Key names are a contract with users' configs.
type file struct {
	TLS            fileTLS      `yaml:"tls"`
	Log            fileLog      `yaml:"log"`
	TrustedProxies []string     `yaml:"trusted_proxies"`
	Domains        []fileDomain `yaml:"domains"`
}

type fileTLS struct {
	CertFile   string    `yaml:"cert_file"`
	KeyFile    string    `yaml:"key_file"`
	MinVersion string    `yaml:"min_version"`
	ACME       *fileACME `yaml:"acme"`
}

type fileACME struct {
	Email        string `yaml:"email"`
	CacheDir     string `yaml:"cache_dir"`
	DirectoryURL string `yaml:"directory_url"`
}

type fileLog struct {
	Addresses string `yaml:"addresses"`
}

type fileDomain struct {
	Name            string        `yaml:"name"`
	Aliases         []string      `yaml:"aliases"`
	Provider        string        `yaml:"provider"`
	DisplayName     string        `yaml:"display_name"`
	IMAP            *fileServer   `yaml:"imap"`
	POP3            *fileServer   `yaml:"pop3"`
	SMTP            *fileServer   `yaml:"smtp"`
	ActiveSync      *fileURL      `yaml:"activesync"`
	EWS             *fileURL      `yaml:"ews"`
	LoginName       string        `yaml:"login_name"`
	OutlookExchange string        `yaml:"outlook_exchange"`
	ACMEApex        bool          `yaml:"acme_apex"`
	Upstream        *fileUpstream `yaml:"upstream"`
}

type fileUpstream struct {
	URL           string   `yaml:"url"`
	Timeout       string   `yaml:"timeout"`
	RelayAuth     bool     `yaml:"relay_auth"`
	RedirectHosts []string `yaml:"redirect_hosts"`
}

type fileServer struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	TLS  string `yaml:"tls"`
}

type fileURL struct {
	URL string `yaml:"url"`
}

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

// indexLines records the line of every mapping value and sequence item
// under its path (domains[0].imap.port), so validation can say where.
func indexLines(n *yaml.Node, path string, lines map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			indexLines(c, path, lines)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			lines[p] = n.Content[i].Line
			indexLines(n.Content[i+1], p, lines)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			lines[p] = c.Line
			indexLines(c, p, lines)
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
	switch f.Log.Addresses {
	case "", "hash":
	case "plain":
		c.Log.Addresses = true
	default:
		v.addf("log.addresses", "%q: use hash (default: a keyed hash of each address) or plain", f.Log.Addresses)
	}
	for i, p := range f.TrustedProxies {
		pfx, err := parsePrefix(p)
		if err != nil {
			v.addf(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or CIDR network", p)
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx)
	}
	if len(f.Domains) == 0 {
		v.addf("domains", "no domains configured: add at least one entry with name and provider")
	}
	seen := map[string]string{} // normalised name -> path of first use
	for i := range f.Domains {
		path := "domains[" + strconv.Itoa(i) + "]"
		d := v.domain(&f.Domains[i], path)
		if d == nil {
			continue
		}
		for j, n := range d.Names() {
			p := path + ".name"
			if j > 0 {
				p = fmt.Sprintf("%s.aliases[%d]", path, j-1)
			}
			if first, dup := seen[n]; dup {
				v.addf(p, "%s is already configured at %s (line %d): each domain and alias may appear once", n, first, v.lineOf(first))
				continue
			}
			seen[n] = p
			c.byName[n] = d
		}
		c.Domains = append(c.Domains, d)
	}
	return c
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
		out.ACME = &ACME{Email: a.Email, CacheDir: abs(a.CacheDir), DirectoryURL: a.DirectoryURL}
		if a.CacheDir == "" {
			v.addf("tls.acme", "cache_dir is required: certificates and the account key are kept there across restarts")
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

var netbiosLogin = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,14}\\%EMAILLOCALPART%$`)

func (v *validator) domain(fd *fileDomain, path string) *Domain {
	name, err := NormalizeDomain(fd.Name)
	if err != nil {
		v.addf(path+".name", "%v", err)
		return nil
	}
	preset, ok := presets[fd.Provider]
	if !ok {
		v.addf(path+".provider", "unknown provider %q: use %s, %s or %s", fd.Provider,
			ProviderMicrosoft365, ProviderGoogleWorkspace, ProviderCustom)
		return nil
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
	}
	if d.DisplayName == "" {
		d.DisplayName = name
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
	switch d.OutlookExchange {
	case "":
		d.OutlookExchange = preset.OutlookExchange
	case OutlookSettings:
	case OutlookRedirect:
		if preset.OutlookRedirectURL == "" {
			v.addf(path+".outlook_exchange", "redirect needs a provider with its own autodiscover service (%s); provider %s has none: use settings",
				ProviderMicrosoft365, preset.Name)
		}
	default:
		v.addf(path+".outlook_exchange", "%q is not a policy: use %s or %s", d.OutlookExchange, OutlookRedirect, OutlookSettings)
	}
	return d
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
	if s.Port < 1 || s.Port > 65535 {
		v.addf(path+".port", "%d is not a TCP port (1-65535)", s.Port)
	}
	switch s.Security {
	case SecuritySSL, SecurityStartTLS, SecurityNone:
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

// notConsumer refuses consumer Outlook.com/Hotmail hosts (PROTOCOLS.md §7).
func (v *validator) notConsumer(host, path string) {
	if IsConsumerHost(host) {
		v.addf(path, "%s is a consumer Outlook.com/Hotmail endpoint. Exchange Online and Outlook.com share the "+
			"outlook.com namespace, and business mailboxes cannot sign in to consumer servers: use the business "+
			"endpoints (outlook.office365.com for IMAP/POP/ActiveSync/EWS, smtp.office365.com for SMTP)", host)
	}
}
