package autodiscover

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"html/template"
	"image/png"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
)

//go:embed setup.html
var setupHTML string

var setupTemplate = template.Must(template.New("setup").Parse(setupHTML))

// settingRow is one line of the manual settings table: what mail
// administrators hand out today, and exactly what the preset serves.
type settingRow struct {
	Protocol, Server   string
	Port               int
	Encryption, SignIn string
	Username           string
}

type setupPage struct {
	Email      string // as typed: html/template escapes it
	Error      string
	Domain     *config.Domain
	Address    string
	Provider   string
	Rows       []settingRow
	ProfileURL string
	QR         template.URL // a data: URL made here, never from input
	Signed     bool
	EAS        bool // the iPhone profile is Exchange (OAuth)
	MacProfile bool // the profile also works on a Mac (mail.managed)
	OAuth      bool
}

// setup answers GET / and /setup: a form for the address, and for
// ?email= the per-client instructions and the settings table. It reveals
// nothing about which mailboxes exist: every address of a served domain
// gets the same page.
func (s *Server) setup(w http.ResponseWriter, r *http.Request) {
	rec := recordOf(w)
	rec.dialect, rec.outcome = DialectSetup, OutcomeForm
	page := setupPage{Email: r.URL.Query().Get("email")}
	if page.Email != "" {
		s.fillSetup(r, &page, rec)
	}
	var b bytes.Buffer
	if err := setupTemplate.Execute(&b, &page); err != nil {
		s.Log.Error("render setup page", "err", err)
		http.Error(w, "the page could not be shown", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "private, no-store")
	// No script runs on this page; nothing may load from elsewhere.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(b.Bytes())
}

func (s *Server) fillSetup(r *http.Request, page *setupPage, rec *record) {
	addr, err := config.ParseAddress(page.Email)
	if err != nil {
		rec.outcome = OutcomeBadAddress
		page.Error = "That does not look like an e-mail address. Check it and try again."
		return
	}
	rec.address = addr.String()
	st := s.site.Load()
	a := st.lookup(addr.Domain)
	if a == nil {
		rec.unknownDomain(addr.Domain)
		page.Error = "This service has no mail settings for " + addr.Domain + ". Ask your mail administrator which settings to use."
		return
	}
	d := a.domain
	rec.domain, rec.outcome = d.Name, OutcomeSettings
	kinds := profileKinds(d)
	host := st.profileHost(r, a)
	page.Domain, page.Address, page.Provider = d, addr.String(), d.Provider.DisplayName
	page.EAS = kinds[0] == profileEAS
	page.MacProfile = kinds[0] == profileIMAP // com.apple.eas.account is iOS only
	page.OAuth = slices.Contains(d.Provider.IncomingAuth, config.AuthOAuth2)
	page.Signed = s.profilesSigned(r.Context(), host)
	page.ProfileURL = s.httpsURL(linkHost(r, host), "/mobileconfig?email="+url.QueryEscape(addr.String()))
	page.QR = qrDataURL(page.ProfileURL)
	page.Rows = settingRows(d, addr, s.Now())
}

// linkHost is the host for links on the page: the profile's host, unless
// the page was opened by address or as localhost (development), where that
// name would not resolve.
func linkHost(r *http.Request, profileHost string) string {
	if h := hostName(r.Host); h == "localhost" || net.ParseIP(h) != nil {
		return h
	}
	return profileHost
}

// settingRows lists every protocol the domain serves.
func settingRows(d *config.Domain, addr config.Address, now time.Time) []settingRow {
	login := d.LoginFor(addr)
	var rows []settingRow
	for _, p := range []struct {
		name string
		srv  *config.Server
		auth []string
	}{
		{"IMAP (incoming)", d.IMAP, d.Provider.IncomingAuth},
		{"POP3 (incoming)", d.POP3, d.Provider.IncomingAuth},
		{"SMTP (outgoing)", d.SMTP, d.SMTPAuth(now)},
	} {
		if p.srv != nil {
			rows = append(rows, settingRow{p.name, p.srv.Host, p.srv.Port, wordsFor[p.srv.Security].page, signIn(p.auth, d, p.srv == d.SMTP), login})
		}
	}
	if d.ActiveSyncURL != "" {
		rows = append(rows, settingRow{"Exchange ActiveSync", urlHost(d.ActiveSyncURL), 443, wordsFor[config.SecuritySSL].page, signIn(d.Provider.IncomingAuth, d, false), login})
	}
	return rows
}

func signIn(auth []string, d *config.Domain, smtp bool) string {
	var out []string
	for _, a := range auth {
		switch a {
		case config.AuthOAuth2:
			out = append(out, "OAuth2 (modern authentication)")
		case config.AuthPasswordCleartext:
			if until := d.Provider.SMTPPasswordUntil; smtp && !until.IsZero() {
				out = append(out, "password, until "+until.Add(-time.Second).Format("2 January 2006"))
			} else {
				out = append(out, "password")
			}
		}
	}
	return strings.Join(out, "; or ")
}

// qrDataURL is a PNG QR code of u as a data: URL.
func qrDataURL(u string) template.URL {
	code, err := qr.Encode(u, qr.M, qr.Auto)
	if err != nil {
		return ""
	}
	if code, err = barcode.Scale(code, 320, 320); err != nil {
		return ""
	}
	var b bytes.Buffer
	if err := png.Encode(&b, code); err != nil {
		return ""
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes()))
}
