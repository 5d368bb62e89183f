package autodiscover

import (
	"bytes"
	_ "embed"
	"fmt"
	"html"
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

// breakable is a host or user name that a narrow screen may wrap only
// after a dot, @ or backslash, never inside a label: what people copy
// letter by letter must not look like two words. Each part is escaped and
// kept whole (nowrap); <wbr> marks where a line may end. Copying the text
// gives the name unchanged.
func breakable(name string) template.HTML {
	var b strings.Builder
	for name != "" {
		i := strings.IndexAny(name, ".@\\")
		part, sep := name, ""
		if i >= 0 {
			part, sep, name = name[:i], name[i:i+1], name[i+1:]
		} else {
			name = ""
		}
		b.WriteString(`<span class="nb">`)
		b.WriteString(template.HTMLEscapeString(part + sep))
		b.WriteString(`</span>`)
		if sep != "" && name != "" {
			b.WriteString("<wbr>")
		}
	}
	return template.HTML(b.String())
}

// settingRow is one line of the manual settings table: what mail
// administrators hand out today, and exactly what the preset serves.
type settingRow struct {
	Protocol, Server   string
	Port               int
	Encryption, SignIn string
	Username           string
}

type setupPage struct {
	pageShape
	M map[string]template.HTML // its messages, escaped, this page's names filled in
	// Languages and TableRows are the language links and the settings
	// table's rows, written (and escaped) here rather than by the
	// template: they are most of a page's template actions, and a page
	// must cost little more than an API answer.
	Languages, TableRows template.HTML
	Email                string // as typed; escaped where it is written
	Error                string
	Address              string // for people: anna@bücher.example
	Rows                 []settingRow
	ProfileURL           string
	QR                   template.HTML // an SVG element drawn here from numbers alone, never from input
}

// pageShape is everything a settings page is rendered from besides one
// address's parts: the key under which its skeleton is kept, and all the
// template is given when it renders one (renderSetup). A field that
// changes the page belongs here, and is then part of the key.
type pageShape struct {
	L *catalogue // the page's language
	// Org is the organisation the page is for: the domain's display name,
	// from the address or from the host (autodiscover.<domain>).
	Org        string
	DomainName string // for people: a U-label
	Provider   string
	Signed     bool
	Profile    bool // an Apple profile is offered
	EAS        bool // the iPhone profile is Exchange (OAuth)
	MacProfile bool // the profile also works on a Mac (mail.managed)
	OAuth      bool
	// AppPasswordHelp is the message that says where to make an app
	// password, for a provider that takes only those.
	AppPasswordHelp string
	// SMTPAdminNote: password SMTP is offered, and works only once an
	// administrator enabled it for the mailbox.
	SMTPAdminNote bool
	HasQR         bool
}

// languageLinks is the language switcher's list items: the same page in
// each language, plain links (no script). The query is URL-encoded (as
// url.Values.Encode orders it), then HTML-escaped.
func languageLinks(r *http.Request, cur *catalogue, email string) template.HTML {
	p := "/setup?"
	if r.URL.Path == "/" && email == "" {
		p = "/?"
	}
	if email != "" {
		p += "email=" + url.QueryEscape(email) + "&"
	}
	p = html.EscapeString(p + "lang=")
	var b strings.Builder
	for _, c := range catalogues {
		b.WriteString(`<li><a href="` + p + c.Code + `" lang="` + c.Code + `" hreflang="` + c.Code + `"`)
		if c == cur {
			b.WriteString(` aria-current="true"`)
		}
		b.WriteString(">" + html.EscapeString(c.Name) + "</a></li>\n")
	}
	return template.HTML(b.String())
}

// tableRows is the settings table's rows, each cell labelled for the
// phone layout (td::before shows data-label).
func tableRows(l *catalogue, rows []settingRow) template.HTML {
	var b strings.Builder
	server, port, encryption, signIn, username := html.EscapeString(l.T("col_server")), html.EscapeString(l.T("col_port")),
		html.EscapeString(l.T("col_encryption")), html.EscapeString(l.T("col_signin")), html.EscapeString(l.T("col_username"))
	for _, r := range rows {
		fmt.Fprintf(&b, `<tr><th scope="row">%s</th><td data-label="%s"><code>%s</code></td><td data-label="%s">%d</td>`+
			`<td data-label="%s">%s</td><td data-label="%s">%s</td><td data-label="%s"><code>%s</code></td></tr>`+"\n",
			html.EscapeString(r.Protocol), server, breakable(r.Server), port, r.Port,
			encryption, html.EscapeString(r.Encryption), signIn, html.EscapeString(r.SignIn), username, breakable(r.Username))
	}
	return template.HTML(b.String())
}

// setup answers GET / and /setup: a form for the address, and for
// ?email= the per-client instructions and the settings table. It reveals
// nothing about which mailboxes exist: every address of a served domain
// gets the same page.
//
// Cost: at most limits.pages_per_client_per_minute a client and half the
// CPUs at once (limitPages); no body; the page a cached skeleton of about
// 12 KiB with the address's parts filled in (its QR code cached by URL),
// from the answer budget.
func (s *Server) setup(w http.ResponseWriter, r *http.Request) {
	rec := reportOf(r)
	rec.dialect, rec.outcome = DialectSetup, OutcomeForm
	page := setupPage{pageShape: pageShape{L: pageLanguage(r)}, Email: r.URL.Query().Get("email")}
	if a := s.site.Load().hostDomain(r.Host); a != nil {
		page.Org = a.domain.DisplayName
	}
	if page.Email != "" {
		s.fillSetup(r, &page, rec)
	}
	body, err := s.renderSetup(r, &page)
	if err != nil {
		s.Log.Error("render setup page", "err", err)
		http.Error(w, "the page could not be shown", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Language", page.L.Code)
	h.Set("Vary", "Accept-Language")
	// No script runs on this page; nothing may load from elsewhere.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	s.send(w, r, http.StatusOK, "text/html; charset=utf-8", "private, no-store", body)
}

// Holes in a page skeleton, one per part that belongs to one address: a
// token of letters and digits, which no escaper of html/template changes
// and no page text holds. Only skeletons rendered here are searched for
// them, never anything a client sent.
const (
	holeEmail = "hole7e3fEmail"
	holeLinks = "hole7e3fLinks"
	holeURL   = "hole7e3fURL"
	holeQR    = "hole7e3fQR"
	holeTitle = "hole7e3fCaption"
	holeRows  = "hole7e3fRows"
)

// skeletonCacheBytes bounds the page skeletons kept (about 12 KB each).
const skeletonCacheBytes = 4 << 20

// renderSetup writes the page. A settings page is the template's work for
// the domain, language and policies, done once and kept (a skeleton with
// holes), and the address's own parts filled in per request, escaped for
// where they go: the template's escaping, and most of a page's cost,
// is not repeated per address, so a page costs little more than an API
// answer.
func (s *Server) renderSetup(r *http.Request, page *setupPage) ([]byte, error) {
	links := languageLinks(r, page.L, page.Email)
	if page.Rows == nil { // the form and error pages (no table): rendered whole
		page.M = page.L.messages("org", page.Org, "provider", page.Provider, "domain", page.DomainName)
		page.Languages = links
		var b bytes.Buffer
		err := setupTemplate.Execute(&b, page)
		return b.Bytes(), err
	}
	page.HasQR = page.QR != ""
	shape := page.pageShape
	key := fmt.Sprintf("%#v", shape) // every field, strings quoted
	now := s.Now()
	skeleton, ok := s.setupPages.get(key, now)
	if !ok {
		// The template sees the shape and holes, nothing of the address.
		holes := setupPage{pageShape: shape, Email: holeEmail, ProfileURL: holeURL, Languages: holeLinks, TableRows: holeRows}
		if shape.HasQR {
			holes.QR = holeQR
		}
		holes.M = shape.L.messages("org", shape.Org, "provider", shape.Provider, "domain", shape.DomainName)
		holes.M["table_caption"] = holeTitle
		var b bytes.Buffer
		if err := setupTemplate.Execute(&b, &holes); err != nil {
			return nil, err
		}
		skeleton = b.Bytes()
		s.setupPages.put(key, skeleton, now)
	}
	caption := html.EscapeString(page.L.T("table_caption", "address", page.Address))
	rows := tableRows(page.L, page.Rows)
	var b bytes.Buffer
	b.Grow(len(skeleton) + len(links) + len(page.QR) + len(rows) + 512)
	// One pass over the skeleton: what is filled in is never searched.
	_, err := strings.NewReplacer(
		holeEmail, html.EscapeString(page.Email),
		holeLinks, string(links),
		holeURL, html.EscapeString(page.ProfileURL),
		holeQR, string(page.QR),
		holeTitle, caption,
		holeRows, string(rows),
	).WriteString(&b, string(skeleton))
	return b.Bytes(), err
}

func (s *Server) fillSetup(r *http.Request, page *setupPage, rec *report) {
	l := page.L
	st := s.site.Load()
	addr, a, err := st.resolve(page.Email, rec)
	switch err {
	case errBadAddress:
		page.Error = l.T("error_bad_address")
		return
	case errUnknownDomain:
		page.Error = l.T("error_unknown_domain", "domain", config.UnicodeDomain(addr.Domain))
		return
	}
	d := a.domain
	rec.outcome = OutcomeSettings
	now := s.Now()
	kinds := d.ProfileKinds(now)
	host := st.profileHost(r, a)
	page.Org, page.DomainName, page.Address, page.Provider = d.DisplayName, config.UnicodeDomain(d.Name), addr.ForPeople(), d.Provider.DisplayName
	page.Profile = len(kinds) > 0
	page.EAS = page.Profile && kinds[0] == config.ProfileEAS
	page.MacProfile = page.Profile && kinds[0] == config.ProfileIMAP // com.apple.eas.account is iOS only
	page.OAuth = slices.Contains(d.Provider.IncomingAuth, config.AuthOAuth2)
	page.AppPasswordHelp = d.Provider.AppPasswordHelp
	page.SMTPAdminNote = d.Provider.SMTPAuthPerMailbox && slices.Contains(d.SMTPAuth(now), config.AuthPasswordCleartext)
	if page.Profile {
		page.Signed = s.profilesSigned(r.Context(), host)
		page.ProfileURL = s.httpsURL(linkHost(r, host), "/mobileconfig?email="+url.QueryEscape(addr.String()))
		page.QR = s.qrCode(page.ProfileURL)
	}
	page.Rows = settingRows(l, d, addr, now)
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

// settingRows lists every protocol the domain serves, in l's words.
func settingRows(l *catalogue, d *config.Domain, addr config.Address, now time.Time) []settingRow {
	login := d.LoginFor(addr)
	encryption := func(sec config.Security) string {
		if sec == config.SecurityNone {
			return l.T("encryption_none")
		}
		return wordsFor[sec].page
	}
	var rows []settingRow
	for _, p := range []struct {
		key  string
		srv  *config.Server
		auth []string
	}{
		{"service_imap", d.IMAP, d.Provider.IncomingAuth},
		{"service_pop3", d.POP3, d.Provider.IncomingAuth},
		{"service_smtp", d.SMTP, d.SMTPAuth(now)},
	} {
		if p.srv != nil {
			rows = append(rows, settingRow{l.T(p.key), p.srv.Host, p.srv.Port, encryption(p.srv.Security), signIn(l, p.auth, d, p.srv == d.SMTP), login})
		}
	}
	if d.ActiveSyncURL != "" {
		rows = append(rows, settingRow{l.T("service_activesync"), urlHost(d.ActiveSyncURL), 443, encryption(config.SecuritySSL), signIn(l, d.Provider.IncomingAuth, d, false), login})
	}
	return rows
}

// signIn names the sign-in methods, as the provider has people use them:
// an app password where the account's own is refused, a password's last
// day where the provider has announced it, in the language's own date
// form.
func signIn(l *catalogue, auth []string, d *config.Domain, smtp bool) string {
	var out []string
	for _, a := range auth {
		switch a {
		case config.AuthOAuth2:
			out = append(out, l.T("signin_oauth"))
		case config.AuthPasswordCleartext:
			switch until := d.SMTPPasswordUntil(); {
			case d.Provider.AppPasswordHelp != "":
				out = append(out, l.T("signin_app_password"))
			case smtp && !until.IsZero():
				// The last day, in the language's own form (a Go layout in
				// its catalogue: x/text has no date formats).
				out = append(out, l.T("signin_password_until", "date", until.Add(-time.Second).Format(l.T("date_layout"))))
			default:
				out = append(out, l.T("signin_password"))
			}
		}
	}
	return strings.Join(out, l.T("signin_or"))
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
