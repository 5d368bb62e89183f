package config

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Thunderbird <authentication> values (Mozilla autoconfig, config-v1.1.xml).
const (
	AuthOAuth2            = "OAuth2"
	AuthPasswordCleartext = "password-cleartext"
)

// Outlook desktop policies for requests that want Exchange settings.
const (
	OutlookRedirect = "redirect" // answer redirectUrl to the provider's own autodiscover
	OutlookSettings = "settings" // answer the same IMAP/POP/SMTP (+EWS) settings as everyone else
)

// OAuth2 is the <oAuth2> block of an autoconfig document.
type OAuth2 struct {
	Issuer   string
	Scope    string
	AuthURL  string
	TokenURL string
}

// Preset is a provider's endpoints and policies. Presets are data: every
// provider fact the responder hands out comes from this file.
type Preset struct {
	Name          string
	DisplayName   string // provider name, for people (setup page, summaries)
	IMAP          *Server
	POP3          *Server
	SMTP          *Server
	ActiveSyncURL string
	EWSURL        string
	OABURL        string
	// IncomingAuth and SMTPAuth are the sign-in methods offered, preferred
	// first, as Thunderbird <authentication> values.
	IncomingAuth []string
	SMTPAuth     []string
	// SMTPPasswordUntil, when set, offers password-cleartext for SMTP after
	// SMTPAuth until that instant: the provider still accepts passwords for
	// submission but has announced the end.
	SMTPPasswordUntil time.Time
	OAuth2            *OAuth2
	// AppPasswordHelp, when set, says the provider takes only app
	// passwords from mail apps, never the account's own: it is the setup
	// page's message key that tells people where to make one.
	AppPasswordHelp string
	// SMTPAuthPerMailbox: password SMTP works only for mailboxes an
	// administrator enabled it for ("Authenticated SMTP").
	SMTPAuthPerMailbox bool
	// EWSOffFrom, when set, is when the provider switches EWS off by
	// default: from then on ews_access: auto offers it in no answer, and
	// only ews_access: on (a tenant that enabled it) does. EWSRetired, when
	// set, is when EWS ends for everyone: no answer offers it after, and
	// ews_access: on is refused.
	EWSOffFrom, EWSRetired time.Time
	// FromExchangeHost: every endpoint comes from the domain's
	// exchange_host (the server names are left empty here).
	FromExchangeHost bool
	// OutlookExchange is the default policy for Outlook asking for Exchange;
	// OutlookRedirectURL is where "redirect" sends it.
	OutlookExchange    string
	OutlookRedirectURL string
	DocumentationURL   string
	// MSOnline is SOAP's UserMSOnline: the mailboxes are in Exchange
	// Online.
	MSOnline bool
	// MXSuffixes are the provider's mail exchangers (doctor warns about an
	// MX under none of them); MXAdvice says what the MX should be, with
	// {dashed} for the domain with dots as dashes.
	MXSuffixes []string
	MXAdvice   string
	// AutodiscoverCNAME is the provider's own autodiscover name, which a
	// domain's autodiscover CNAME points at before this service takes over
	// (doctor recognises it).
	AutodiscoverCNAME string
	// PinnedHosts are the provider's server names beside those above that a
	// hosts file must not pin: pinned, they break clients whenever the
	// provider moves the servers.
	PinnedHosts []string
}

// Preset names usable as a domain's provider.
const (
	ProviderMicrosoft365    = "microsoft365"
	ProviderGoogleWorkspace = "google-workspace"
	ProviderExchange        = "exchange"
	ProviderCustom          = "custom"
)

// Exchange's default virtual directories, under a domain's exchange_host.
const (
	exchangeActiveSyncPath = "/Microsoft-Server-ActiveSync"
	exchangeEWSPath        = "/EWS/Exchange.asmx"
	exchangeOABPath        = "/OAB/"
)

var presets = map[string]*Preset{
	// Microsoft 365 / Exchange Online business endpoints (Microsoft Learn,
	// "POP, IMAP, and SMTP settings for Outlook.com" and "How to set up a
	// multifunction device or application to send email using Microsoft
	// 365"; the endpoint table of Microsoft's 2015 retirement notice).
	ProviderMicrosoft365: {
		Name:          ProviderMicrosoft365,
		DisplayName:   "Microsoft 365",
		IMAP:          &Server{Host: "outlook.office365.com", Port: 993, Security: SecuritySSL},
		POP3:          &Server{Host: "outlook.office365.com", Port: 995, Security: SecuritySSL},
		SMTP:          &Server{Host: "smtp.office365.com", Port: 587, Security: SecurityStartTLS},
		ActiveSyncURL: "https://outlook.office365.com/Microsoft-Server-ActiveSync",
		EWSURL:        "https://outlook.office365.com/EWS/Exchange.asmx",
		// Basic auth for IMAP/POP was switched off in Exchange Online from
		// 2022-10-01; only OAuth2 (SASL XOAUTH2) works.
		IncomingAuth: []string{AuthOAuth2},
		SMTPAuth:     []string{AuthOAuth2},
		// Exchange Team blog 2026-01-27: SMTP AUTH Basic stays as it is until
		// the end of December 2026, then is disabled by default.
		SMTPPasswordUntil: time.Date(2027, time.January, 1, 0, 0, 0, 0, time.UTC),
		// Microsoft: SMTP AUTH is switched on per mailbox in the admin center
		// ("Enable or disable SMTP AUTH in Exchange Online").
		SMTPAuthPerMailbox: true,
		// Microsoft's documented scopes for IMAP/POP/SMTP OAuth (learn.microsoft.com
		// "Authenticate an IMAP, POP or SMTP connection using OAuth").
		OAuth2: &OAuth2{
			Issuer:   "login.microsoftonline.com",
			Scope:    "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/POP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access",
			AuthURL:  "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
			TokenURL: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
		},
		// EWS in Exchange Online (Exchange Team blog, "Retirement of
		// Exchange Web Services in Exchange Online"): switched off from
		// 2026-10-01 for every tenant that did not enable it with an
		// allow-list of application IDs, and for all on 2027-04-01.
		EWSOffFrom:         time.Date(2026, time.October, 1, 0, 0, 0, 0, time.UTC),
		EWSRetired:         time.Date(2027, time.April, 1, 0, 0, 0, 0, time.UTC),
		OutlookExchange:    OutlookRedirect,
		OutlookRedirectURL: "https://autodiscover-s.outlook.com/autodiscover/autodiscover.xml",
		DocumentationURL:   "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/pop3-and-imap4/pop3-and-imap4",
		MSOnline:           true,
		// Microsoft 365 admin center, "Add DNS records to connect your
		// domain": <domain-with-dashes>.mail.protection.outlook.com, and
		// the newer *.mx.microsoft.
		MXSuffixes: []string{".mail.protection.outlook.com.", ".mx.microsoft."},
		MXAdvice: "MX: the host the Microsoft 365 admin center shows, {dashed}.mail.protection.outlook.com (or *.mx.microsoft). " +
			"An MX under olc.protection.outlook.com marks the domain as consumer Outlook.com, and Thunderbird then picks consumer settings",
		AutodiscoverCNAME: "autodiscover.outlook.com.",
		// The endpoint table of Microsoft's support article "Can't connect
		// to Exchange Online because of incorrect service settings" (2015)
		// and its successors.
		PinnedHosts: []string{"autodiscover.outlook.com", "autodiscover-s.outlook.com", "outlook.office365.com",
			"smtp.office365.com", "outlook.office.com", "smtp-legacy.office365.com"},
	},
	// Google Workspace (ISPDB googlemail.com.xml; Google's XOAUTH2 document).
	// App passwords still work, so password-cleartext stays as a second
	// choice; account passwords do not (Google Workspace Admin Help, "Turning
	// off less secure app access").
	ProviderGoogleWorkspace: {
		Name:         ProviderGoogleWorkspace,
		DisplayName:  "Google Workspace",
		IMAP:         &Server{Host: "imap.gmail.com", Port: 993, Security: SecuritySSL},
		POP3:         &Server{Host: "pop.gmail.com", Port: 995, Security: SecuritySSL},
		SMTP:         &Server{Host: "smtp.gmail.com", Port: 465, Security: SecuritySSL},
		IncomingAuth: []string{AuthOAuth2, AuthPasswordCleartext},
		SMTPAuth:     []string{AuthOAuth2, AuthPasswordCleartext},
		OAuth2: &OAuth2{
			Issuer:   "accounts.google.com",
			Scope:    "https://mail.google.com/",
			AuthURL:  "https://accounts.google.com/o/oauth2/auth",
			TokenURL: "https://www.googleapis.com/oauth2/v3/token",
		},
		AppPasswordHelp:  "iphone_app_password", // "create one in your Google Account, under Security"
		OutlookExchange:  OutlookSettings,
		DocumentationURL: "https://support.google.com/mail/answer/7126229",
		// Google Workspace Admin Help, "Set up MX records for Google
		// Workspace".
		MXSuffixes: []string{"google.com.", "googlemail.com."},
		MXAdvice:   "MX: smtp.google.com, priority 1 (Google Workspace)",
	},
	// exchange: an Exchange server that someone other than Microsoft runs
	// (on-premises, or hosted Exchange), on one public name, exchange_host:
	// IMAP, POP3 and SMTP submission on their standard TLS ports (Microsoft
	// Learn, "POP3 and IMAP4 in Exchange Server"; Exchange's client
	// receive connector on 587), ActiveSync, EWS and the offline address
	// book on Exchange's default virtual directories. Password sign-in.
	ProviderExchange: {
		Name:             ProviderExchange,
		DisplayName:      "Exchange",
		IMAP:             &Server{Port: 993, Security: SecuritySSL},
		POP3:             &Server{Port: 995, Security: SecuritySSL},
		SMTP:             &Server{Port: 587, Security: SecurityStartTLS},
		IncomingAuth:     []string{AuthPasswordCleartext},
		SMTPAuth:         []string{AuthPasswordCleartext},
		FromExchangeHost: true,
		OutlookExchange:  OutlookSettings,
	},
	// custom: every server comes from the config file.
	ProviderCustom: {
		Name:            ProviderCustom,
		DisplayName:     "custom",
		IncomingAuth:    []string{AuthPasswordCleartext},
		SMTPAuth:        []string{AuthPasswordCleartext},
		OutlookExchange: OutlookSettings,
	},
}

// LookupPreset returns the named provider preset.
func LookupPreset(name string) (*Preset, bool) {
	p, ok := presets[name]
	return p, ok
}

// Presets returns every preset, by name.
func Presets() []*Preset {
	var out []*Preset
	for _, p := range presets {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Preset) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// presetNames lists the preset names for a message: "a, b, c or d".
func presetNames() string {
	var names []string
	for _, p := range Presets() {
		names = append(names, p.Name)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// consumerHosts are Outlook.com/Hotmail consumer endpoints (Microsoft's
// Outlook.com settings page; Thunderbird's ISPDB hotmail.com entry).
// Exchange Online and Outlook.com shared a namespace, and autoconfiguring
// clients of business users were handed these hosts; a business mailbox
// cannot log in to them. The service refuses to hand any of them out.
var consumerHosts = []string{
	"smtp-mail.outlook.com",
	"imap-mail.outlook.com",
	"pop-mail.outlook.com",
	"smtp.live.com",
	"pop3.live.com",
	"eas.outlook.com",
	"m.hotmail.com",
	"m.outlook.com",
	"s.outlook.com",
}

// consumerSuffixes catch the rest of the consumer namespaces: every hotmail
// and live.com host, and the consumer MX (olc.protection.outlook.com).
var consumerSuffixes = []string{".hotmail.com", ".live.com", ".olc.protection.outlook.com"}

// IsConsumerHost reports whether host is a consumer Outlook.com/Hotmail
// endpoint that must never be handed to a business domain, compared as
// guardText has it.
func IsConsumerHost(host string) bool {
	h := normalizeHost(guardText(host))
	for _, c := range consumerHosts {
		if h == c {
			return true
		}
	}
	for _, s := range consumerSuffixes {
		if h == s[1:] || len(h) > len(s) && h[len(h)-len(s):] == s {
			return true
		}
	}
	return false
}

// ConsumerHosts lists the exact consumer host names, for tests and doctor.
func ConsumerHosts() []string { return append([]string(nil), consumerHosts...) }

// hostToken finds host names in free text (URLs, element values).
var hostToken = regexp.MustCompile(`(?i)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+`)

// MentionsConsumerHost reports whether text names a consumer host
// anywhere, as a whole host name (autodiscover-s.outlook.com is business,
// s.outlook.com consumer), compared as guardText has it.
func MentionsConsumerHost(text string) bool {
	for _, h := range hostToken.FindAllString(guardText(text), -1) {
		if IsConsumerHost(h) {
			return true
		}
	}
	return false
}

// guardText is text as the consumer-host guard compares it, so that a
// disguised host name reads as the one a client would connect to:
// percent-escapes decoded (twice, for double encoding), NFKC-normalised
// (fullwidth letters, the one-dot leader and other compatibility forms
// become ASCII; UAX #15), ideographic full stops read as dots (UTS #46
// label separators), invisible format characters dropped, lower case.
func guardText(s string) string {
	s = percentDecode(percentDecode(s))
	s = norm.NFKC.String(s)
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\u3002' || r == '\uff0e' || r == '\uff61':
			return '.'
		case unicode.Is(unicode.Cf, r):
			return -1
		}
		return r
	}, s)
	return strings.ToLower(s)
}

// percentDecode decodes every valid %XX escape and leaves anything else as
// it is (url.PathUnescape gives up on the first bad escape, which would
// let one hide the rest).
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
