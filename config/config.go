// Package config reads the autodiscover-proxy config file, applies the
// provider presets and answers which domains are served.
package config

import (
	"net/netip"
	"slices"
	"strings"
	"time"
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
	Limits  Limits
	Domains []*Domain // in file order
	// TrustedProxies are the networks whose X-Forwarded-For and
	// X-Forwarded-Proto headers, and PROXY protocol header, are believed.
	TrustedProxies []netip.Prefix
	// Sources are the files the config was read from: the main file, then
	// every file its include: patterns matched, in order. IncludeDirs are
	// the directories those patterns look in, where a new file may match.
	Sources, IncludeDirs []string
	// Hash identifies what was read (every source's name and bytes): two
	// replicas with the same Hash serve the same config.
	Hash     string
	include  []string // the include: patterns, relative to the main file's directory
	byName   map[string]*Domain
	firstUse map[string]firstUse // while reading: where each name was configured
}

// TrustedProxy reports whether a is in one of the trusted networks.
func TrustedProxy(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
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
	Email string
	// Store is where certificates are kept: StoreDir (CacheDir) or
	// StorePostgres (shared by replicas; the connection from libpq's
	// environment, PGHOST and the rest).
	Store        string
	CacheDir     string
	DirectoryURL string
}

// Certificate stores, the `tls.acme.store:` values.
const (
	StoreDir      = "dir"
	StorePostgres = "postgres"
)

// LetsEncrypt is the default ACME directory (Let's Encrypt production).
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// Log is the `log:` section.
type Log struct {
	// Addresses: false logs e-mail addresses as a keyed hash; true as they are.
	Addresses bool
	// AddressKeyFile holds the hash's key (address_key_file), shared by
	// replicas so that their logs agree; AddressKey is its content, less a
	// trailing newline. Without it each process picks a random key.
	AddressKeyFile string
	AddressKey     []byte
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
	// ActiveSyncURL, EWSURL and OABURL (the offline address book) are
	// empty when not offered or not known.
	ActiveSyncURL string
	EWSURL        string
	OABURL        string
	// ExchangeHost is the exchange provider's server name.
	ExchangeHost string
	// LoginName is %EMAILADDRESS%, %EMAILLOCALPART% or NETBIOS\%EMAILLOCALPART%.
	LoginName       string
	OutlookExchange string
	// SMTPPassword is the `smtp_password:` policy: auto, on or off.
	SMTPPassword string
	// EWSAccess is the `ews_access:` policy: auto, on or off (EWSAt).
	EWSAccess string
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

// Limits is the `limits:` section: what an attacker can make the service
// spend, bounded.
type Limits struct {
	// UpstreamCacheBytes bounds the cache of upstream answers.
	UpstreamCacheBytes int
	// RelayPerClientPerHour and RelayPerAccountPerHour bound the sign-ins
	// relayed to an upstream (relay_auth) per client IP and per address:
	// each a token bucket of that many, refilled over an hour.
	RelayPerClientPerHour, RelayPerAccountPerHour int
	// PagesPerClientPerMinute bounds the setup pages and Apple profiles
	// one client IP gets (a token bucket of that many, refilled each minute).
	PagesPerClientPerMinute int
	// ConnectionsPerListener caps each listener's open connections (read
	// at start).
	ConnectionsPerListener int
	// AnswerMemoryBytes bounds the answers being built or written at
	// once, in bytes (read at start).
	AnswerMemoryBytes int
	// RelayPerMinute bounds the sign-ins relayed to upstreams server-wide:
	// the backstop that no number of client addresses multiplies.
	RelayPerMinute int
	// ClientIPv6Prefix is how many leading bits of an IPv6 address name
	// one client for the per-client limits: a home or an office is given
	// a /64 (or more), and picks any address in it. IPv4 addresses are
	// each a client.
	ClientIPv6Prefix int
}

// Default limits: a 16 MiB cache holds 64 of the largest upstream answers
// (256 KiB) and thousands of ordinary ones; a mail client signs in a
// handful of times while an account is set up, and retries a few times.
const (
	DefaultUpstreamCacheMB        = 16
	DefaultRelayPerClientPerHour  = 20
	DefaultRelayPerAccountPerHour = 10
	// A person opens the page a few times; a household or an office behind
	// one address, a few more.
	DefaultPagesPerClientPerMinute = 30
	// A TLS connection holds about 44 KB; clients use one or two each.
	DefaultConnectionsPerListener = 512
	// 32 MiB holds eight of the largest SOAP answers and thousands of
	// ordinary ones.
	DefaultAnswerMemoryMB = 32
	// Two sign-ins a second: an office setting up its phones at once stays
	// under it; a password spray from any number of addresses gets no more.
	DefaultRelayPerMinute   = 120
	DefaultClientIPv6Prefix = 64
)

// Upstream timeout bounds.
const (
	DefaultUpstreamTimeout = 5 * time.Second
	maxUpstreamTimeout     = 30 * time.Second
)

// Names returns the domain name followed by its aliases.
func (d *Domain) Names() []string { return append([]string{d.Name}, d.Aliases...) }

// SMTP password policies, the `smtp_password:` values.
const (
	SMTPPasswordAuto = "auto" // as the preset says, its date included
	SMTPPasswordOn   = "on"   // offered, past the preset's date too
	SMTPPasswordOff  = "off"  // never offered
)

// SMTPAuth returns the SMTP sign-in methods offered at time t.
func (d *Domain) SMTPAuth(t time.Time) []string {
	p := d.Provider
	auth := p.SMTPAuth
	password := slices.Contains(auth, AuthPasswordCleartext)
	switch d.SMTPPassword {
	case SMTPPasswordOn:
		password = true
	case SMTPPasswordOff:
		password = false
	default:
		password = password || !p.SMTPPasswordUntil.IsZero() && t.Before(p.SMTPPasswordUntil)
	}
	out := slices.DeleteFunc(slices.Clone(auth), func(a string) bool { return a == AuthPasswordCleartext })
	if password {
		out = append(out, AuthPasswordCleartext)
	}
	return out
}

// SMTPPasswordUntil is when password SMTP stops being offered: the
// preset's date under "auto", zero otherwise (no end, or never offered).
func (d *Domain) SMTPPasswordUntil() time.Time {
	if d.SMTPPassword != SMTPPasswordAuto && d.SMTPPassword != "" {
		return time.Time{}
	}
	return d.Provider.SMTPPasswordUntil
}

// Now is the clock the config's dated checks read (tests set it).
var Now = time.Now

// EWS access policies, the `ews_access:` values.
const (
	EWSAccessAuto = "auto" // as the provider says, its dates included
	EWSAccessOn   = "on"   // offered: the tenant enabled EWS (until the provider retires it)
	EWSAccessOff  = "off"  // never offered
)

// EWSAt is the EWS URL the domain's answers offer at time t, or "" when
// they offer none: no answer in any dialect then points a client at EWS.
func (d *Domain) EWSAt(t time.Time) string {
	p := d.Provider
	switch {
	case d.EWSURL == "", d.EWSAccess == EWSAccessOff:
		return ""
	case !p.EWSRetired.IsZero() && !t.Before(p.EWSRetired):
		return ""
	case d.EWSAccess != EWSAccessOn && !p.EWSOffFrom.IsZero() && !t.Before(p.EWSOffFrom):
		return ""
	}
	return d.EWSURL
}

// Changes are the instants at which the domain's answers change on their
// own (a provider's announced dates), in order.
func (d *Domain) Changes() []time.Time {
	var ts []time.Time
	for _, t := range []time.Time{d.SMTPPasswordUntil(), d.Provider.EWSOffFrom, d.Provider.EWSRetired} {
		if !t.IsZero() {
			ts = append(ts, t)
		}
	}
	slices.SortFunc(ts, time.Time.Compare)
	return slices.CompactFunc(ts, time.Time.Equal)
}

// Apple profile kinds, the values of /mobileconfig?type=.
const (
	ProfileEAS  = "eas"  // com.apple.eas.account
	ProfileIMAP = "imap" // com.apple.mail.managed, IMAP (or POP) and SMTP
)

// ProfileKinds are the Apple profile types (?type=) the domain offers, preferred first.
// IMAP/POP (com.apple.mail.managed) only where passwords work: it has no
// OAuth key, and Exchange Online refuses passwords for IMAP. ActiveSync
// (com.apple.eas.account, with OAuth where passwords do not work) where the
// domain has it, first for an Exchange server (mail, calendar and contacts
// in one account, as the server's own users set it up). An IMAP profile
// signs in to SMTP with the password too, so it needs password SMTP at
// time now (smtp_password: off takes it away): there may be no profile.
func (d *Domain) ProfileKinds(now time.Time) []string {
	var kinds []string
	if d.PasswordWorks() && slices.Contains(d.SMTPAuth(now), AuthPasswordCleartext) {
		kinds = append(kinds, ProfileIMAP)
	}
	if d.ActiveSyncURL != "" {
		kinds = append(kinds, ProfileEAS)
		if d.Provider.FromExchangeHost {
			slices.Reverse(kinds)
		}
	}
	return kinds
}

// PasswordWorks reports whether the provider takes a password for IMAP
// and POP.
func (d *Domain) PasswordWorks() bool {
	return slices.Contains(d.Provider.IncomingAuth, AuthPasswordCleartext)
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
