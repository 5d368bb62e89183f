package autodiscover

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
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
	QR         template.HTML // an SVG element drawn here from numbers alone, never from input
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
	page.QR = s.qrCode(page.ProfileURL)
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
			if until := d.SMTPPasswordUntil(); smtp && !until.IsZero() {
				out = append(out, "password, until "+until.Add(-time.Second).Format("2 January 2006"))
			} else {
				out = append(out, "password")
			}
		}
	}
	return strings.Join(out, "; or ")
}

// qrCacheBytes bounds the QR codes kept (a code is 2 to 10 KB): a person
// who reloads the page gets the one drawn before.
const qrCacheBytes = 4 << 20

// qrCode is the QR code for a profile URL: a cached one, or one drawn now.
// Encoding a QR code (its mask penalties) costs milliseconds; pages are
// made by at most half the CPUs at once (limitPages), so a flood of them
// leaves the other answers CPU.
func (s *Server) qrCode(u string) template.HTML {
	now := s.Now()
	if b, ok := s.qrCodes.get(u, now); ok {
		return template.HTML(b)
	}
	code := qrSVG(u)
	s.qrCodes.put(u, []byte(code), now)
	return code
}

// qrSVG is a QR code of u as an inline SVG element, drawn from the code's
// own matrix: a path of one rectangle per run of dark modules in a row,
// inside the 4-module quiet zone ISO/IEC 18004 asks for. Scaling is the
// browser's; no bitmap is drawn, compressed or escaped (it holds numbers
// alone), so a page costs little more than an API answer.
func qrSVG(u string) template.HTML {
	code, err := qr.Encode(u, qr.M, qr.Auto)
	if err != nil {
		return ""
	}
	n := code.Bounds().Dx()
	dark := func(x, y int) bool { r, _, _, _ := code.At(x, y).RGBA(); return r == 0 }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="qr" xmlns="http://www.w3.org/2000/svg" width="160" height="160" viewBox="0 0 %d %d" shape-rendering="crispEdges" role="img" aria-label="QR code that opens the profile link"><rect width="100%%" height="100%%" fill="#fff"/><path fill="#000" d="`, n+8, n+8)
	for y := range n {
		for x := 0; x < n; x++ {
			if !dark(x, y) {
				continue
			}
			run := 1
			for x+run < n && dark(x+run, y) {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x+4, y+4, run, run)
			x += run
		}
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String())
}
