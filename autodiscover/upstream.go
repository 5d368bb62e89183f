package autodiscover

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
	"github.com/beevik/etree"
)

// Upstream proxy mode (per domain, `upstream:`): POX requests go to another
// autodiscover service, and its answer is corrected before the client
// sees it. Whatever goes wrong upstream, the client gets the local answer.

const (
	maxUpstreamBody  = 256 << 10 // Exchange answers are a few KiB
	maxUpstreamHops  = 5         // clients stop at 10; a few are plenty here
	upstreamCacheTTL = time.Minute
)

// NewUpstreamClient is the HTTP client used for upstreams: certificates
// verified against the system roots, TLS 1.2+, redirects not followed by
// the client (upstreamPOX follows them under its own rules).
func NewUpstreamClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	t.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: t, CheckRedirect: noRedirects}
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// upstreamResult is what the proxy did, for the log and the metric.
type upstreamResult string

const (
	upOK           upstreamResult = "ok"
	upRewritten    upstreamResult = "rewritten"
	upCached       upstreamResult = "cached"
	upRelayed401   upstreamResult = "relayed_401"
	upUnauthorized upstreamResult = "fallback_401"
	upRateLimited  upstreamResult = "fallback_rate_limited"
	upTimeout      upstreamResult = "fallback_timeout"
	upConnError    upstreamResult = "fallback_connection"
	upStatus       upstreamResult = "fallback_status"
	upTooLarge     upstreamResult = "fallback_too_large"
	upNotXML       upstreamResult = "fallback_not_xml"
	upInvalid      upstreamResult = "fallback_invalid"
	upRedirect     upstreamResult = "fallback_redirect"
	upLoop         upstreamResult = "fallback_loop"
)

// upstreamAnswer is an answer to send as it is: a corrected document, or a
// relayed 401.
type upstreamAnswer struct {
	status  int
	body    []byte
	wwwAuth []string
}

// upstreamPOX asks the domain's upstream about req's one address. A
// non-nil cause means: answer locally; it says why, for the log.
//
// What goes upstream is ours, not the client's: a request built from the
// parsed fields (namespace, the parsed address, schema), never the
// client's body, so nothing the client added (a DTD, a second address,
// comments, other elements) reaches the upstream. That request is also
// the cache key, so two requests share an answer exactly when the
// upstream was asked the same thing. An answer that names another
// address than the one asked is neither served nor kept; one that names
// none is served, and not kept.
func (s *Server) upstreamPOX(ctx context.Context, a *answers, req xmlschema.Request, auth string) (ans upstreamAnswer, res upstreamResult, cause error) {
	up := a.domain.Upstream
	body, _ := req.Document().WriteToBytes() // an in-memory tree: cannot fail
	key := string(body)
	if auth == "" {
		if b, hit := s.cache.get(key, s.Now()); hit {
			return upstreamAnswer{status: http.StatusOK, body: b}, upCached, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, up.Timeout)
	defer cancel()

	target, addr := up.URL, req.EMailAddress
	seen := map[string]bool{}
	for hop := 0; hop < maxUpstreamHops; hop++ {
		if seen[target+"|"+addr] {
			return ans, upLoop, fmt.Errorf("redirect loop at %s", target)
		}
		seen[target+"|"+addr] = true
		if addr != req.EMailAddress {
			r := req
			r.EMailAddress = addr
			body, _ = r.Document().WriteToBytes()
		}
		resp, data, res, err := s.fetchUpstream(ctx, target, body, auth, up)
		switch {
		case err != nil:
			return ans, res, err
		case resp.StatusCode == http.StatusUnauthorized:
			if up.RelayAuth {
				return upstreamAnswer{status: http.StatusUnauthorized, wwwAuth: resp.Header.Values("WWW-Authenticate")}, upRelayed401, nil
			}
			return ans, upUnauthorized, errors.New("HTTP 401 (relay_auth is off)")
		case resp.StatusCode != http.StatusOK:
			// MS-OXDSCLI 3.2.5: a server SHOULD redirect to another URL with 302.
			next, ok := allowedRedirect(target, resp.Header.Get("Location"), up)
			if !ok {
				return ans, upRedirect, fmt.Errorf("HTTP %d to a host not in redirect_hosts", resp.StatusCode)
			}
			target = next
			continue
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(data); err != nil || doc.Root() == nil {
			return ans, upNotXML, fmt.Errorf("answer is not XML: %v", err)
		}
		acct := doc.FindElement("/Autodiscover/Response/Account")
		switch action := strings.TrimSpace(textOf(acct, "Action")); action {
		case xmlschema.ActionRedirectURL:
			next, ok := allowedRedirect(target, textOf(acct, "RedirectUrl"), up)
			if !ok {
				return ans, upRedirect, errors.New("redirectUrl to a host not in redirect_hosts")
			}
			target = next
			continue
		case "redirectAddr":
			next, err := config.ParseAddress(textOf(acct, "RedirectAddr"))
			if err != nil {
				return ans, upRedirect, fmt.Errorf("redirectAddr: %w", err)
			}
			addr = next.String()
			continue
		}
		out, named, res, err := correctedAnswer(doc, a.domain, a.domain.EWSAt(s.Now()), addr)
		if err != nil {
			return ans, res, err
		}
		// Answers to authenticated requests are the user's own: never kept.
		if auth == "" && named {
			s.cache.put(key, out, s.Now())
		}
		return upstreamAnswer{status: http.StatusOK, body: out}, res, nil
	}
	return ans, upLoop, fmt.Errorf("more than %d redirects", maxUpstreamHops)
}

// fetchUpstream sends one request and reads the answer, at most
// maxUpstreamBody of it. An error comes with the result to record: a
// timeout, a connection error, a status other than 200, 401 or a
// redirect, or an answer too large.
func (s *Server) fetchUpstream(ctx context.Context, target string, body []byte, auth string, up *config.Upstream) (*http.Response, []byte, upstreamResult, error) {
	resp, err := s.postUpstream(ctx, target, body, auth, up)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, nil, upTimeout, err
		}
		return nil, nil, upConnError, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody+1))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusUnauthorized, http.StatusFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return nil, nil, upStatus, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, nil, upTimeout, fmt.Errorf("reading the answer: %w", err)
	case err != nil:
		return nil, nil, upConnError, fmt.Errorf("reading the answer: %w", err)
	case len(data) > maxUpstreamBody:
		return nil, nil, upTooLarge, fmt.Errorf("answer over %d bytes", maxUpstreamBody)
	}
	return resp, data, "", nil
}

// correctedAnswer is an upstream's settings answer for addr, corrected
// for the domain (ews: the EWS URL it offers now, or "") and checked
// again: its bytes, whether it names addr (only then may it be kept), and
// ok or rewritten; or why it is not used.
func correctedAnswer(doc *etree.Document, d *config.Domain, ews, addr string) (out []byte, named bool, res upstreamResult, err error) {
	named, err = answerAddress(doc, addr)
	if err != nil {
		return nil, false, upInvalid, err
	}
	rewritten := rewriteConsumerHosts(doc, d, ews)
	if ews == "" && dropEWS(doc) {
		rewritten = true
	}
	if err := validUpstreamAnswer(doc); err != nil {
		return nil, false, upInvalid, err
	}
	if out, err = doc.WriteToBytes(); err != nil {
		return nil, false, upInvalid, err
	}
	if !bytes.HasPrefix(out, []byte("<?xml")) {
		out = append([]byte(`<?xml version="1.0" encoding="utf-8"?>`+"\n"), out...)
	}
	if rewritten {
		return out, named, upRewritten, nil
	}
	return out, named, upOK, nil
}

// answerAddress checks the address an upstream answer is about
// (Response/User/AutoDiscoverSMTPAddress in the outlook schema,
// Response/User/EMailAddress in mobilesync) against the one asked: named
// reports that it names it, an error that it names another.
func answerAddress(doc *etree.Document, asked string) (named bool, err error) {
	user := doc.FindElement("/Autodiscover/Response/User")
	if user == nil {
		return false, nil
	}
	for _, tag := range []string{"AutoDiscoverSMTPAddress", "EMailAddress"} {
		for _, e := range user.SelectElements(tag) {
			got := strings.TrimSpace(fullText(e))
			if !strings.EqualFold(got, asked) {
				return false, fmt.Errorf("the answer is about %s, not the address asked", tag)
			}
			named = true
		}
	}
	return named, nil
}

// postUpstream sends one POX request. Authorization goes only to the
// configured upstream host, and only over TLS (the URL scheme was checked).
func (s *Server) postUpstream(ctx context.Context, target string, body []byte, auth string, up *config.Upstream) (*http.Response, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", contentTypeXML)
	r.Header.Set("User-Agent", "autodiscover-proxy")
	if auth != "" && r.URL.Scheme == "https" && strings.EqualFold(r.URL.Hostname(), up.Host) {
		r.Header.Set("Authorization", auth)
	}
	return s.UpstreamClient.Do(r)
}

// allowedRedirect resolves a redirect and accepts only https URLs on the
// domain's allow-list.
func allowedRedirect(from, to string, up *config.Upstream) (string, bool) {
	base, err := url.Parse(from)
	if err != nil {
		return "", false
	}
	u, err := base.Parse(strings.TrimSpace(to))
	if err != nil || u.Scheme != "https" || u.User != nil || !up.RedirectHosts[strings.ToLower(u.Hostname())] {
		return "", false
	}
	return u.String(), true
}

// textOf is the whole text of e's first child element named child.
func textOf(e *etree.Element, child string) string {
	if e == nil {
		return ""
	}
	if c := e.SelectElement(child); c != nil {
		return strings.TrimSpace(fullText(c))
	}
	return ""
}

// fullText is all the character data inside e, its children's included, as
// a client that reads an element's text content sees it: Text() alone
// stops at the first child (pop-mail.<b/>outlook.com).
func fullText(e *etree.Element) string {
	var b strings.Builder
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		for _, t := range e.Child {
			switch t := t.(type) {
			case *etree.CharData:
				b.WriteString(t.Data)
			case *etree.Element:
				walk(t)
			}
		}
	}
	walk(e)
	return b.String()
}

// rewriteConsumerHosts replaces every consumer Outlook.com/Hotmail endpoint
// in an upstream answer with the domain's business endpoint of the same
// kind, and removes what has no business counterpart. It reports whether
// anything changed.
func rewriteConsumerHosts(doc *etree.Document, d *config.Domain, ews string) bool {
	changed := false
	servers := map[string]*config.Server{xmlschema.TypeIMAP: d.IMAP, xmlschema.TypePOP3: d.POP3, xmlschema.TypeSMTP: d.SMTP}
	for _, p := range doc.FindElements("//Protocol") {
		typ := textOf(p, "Type")
		srv, isMail := servers[typ]
		if !isMail || !config.MentionsConsumerHost(textOf(p, "Server")) {
			continue
		}
		changed = true
		if srv == nil {
			p.Parent().RemoveChild(p)
			continue
		}
		words := wordsFor[srv.Security]
		setChild(p, "Server", srv.Host)
		setChild(p, "Port", strconv.Itoa(srv.Port))
		setChild(p, "SSL", string(words.poxSSL))
		setChild(p, "Encryption", words.poxEncryption)
	}
	// Everything else that names a consumer host: URLs get the domain's
	// own, anything without a counterpart goes.
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		for _, a := range append([]etree.Attr(nil), e.Attr...) {
			if config.MentionsConsumerHost(a.Value) {
				e.RemoveAttr(a.FullKey())
				changed = true
			}
		}
		for _, c := range e.ChildElements() {
			if len(c.ChildElements()) > 0 && !hasText(c) {
				walk(c) // a container
				continue
			}
			// A value, whatever markup is mixed into it: read whole.
			if !config.MentionsConsumerHost(fullText(c)) {
				continue
			}
			changed = true
			switch repl := replacementURL(c, d, ews); {
			case repl != "":
				setText(c, repl)
			case c.Tag == "Url" || c.Tag == "Name":
				// A mobilesync Server without a business ActiveSync URL.
				if srv := c.Parent(); srv.Tag == "Server" && srv.Parent() != nil {
					srv.Parent().RemoveChild(srv)
				} else {
					e.RemoveChild(c)
				}
			default:
				e.RemoveChild(c)
			}
		}
	}
	if root := doc.Root(); root != nil {
		walk(root)
	}
	return changed
}

// replacementURL is the domain's business URL for an element that held a
// consumer one, or "".
func replacementURL(e *etree.Element, d *config.Domain, ews string) string {
	switch e.Tag {
	case "EwsUrl", "ASUrl":
		return ews
	case "Url", "Name":
		return d.ActiveSyncURL
	case "Server":
		return urlHost(ews)
	}
	return ""
}

// ewsElements are the elements of an outlook answer that point a client
// at EWS (MS-OXDSCLI 2.2.4.1.1.2.1.3: the EWS, availability, unified
// messaging, out-of-office and EMWS URLs).
var ewsElements = []string{"EwsUrl", "ASUrl", "EmwsUrl", "OOFUrl", "UMUrl", "EwsPartnerUrl"}

// dropEWS removes from an upstream answer what points a client at EWS,
// for a domain whose EWS is off: the EXCH, EXPR and EXHTTP protocols
// (their only use is EWS or RPC over HTTP), and any EWS URL elsewhere. It
// reports whether anything was removed.
func dropEWS(doc *etree.Document) bool {
	changed := false
	for _, p := range doc.FindElements("//Protocol") {
		switch textOf(p, "Type") {
		case xmlschema.TypeEXCH, xmlschema.TypeEXPR, "EXHTTP":
			p.Parent().RemoveChild(p)
			changed = true
		}
	}
	for _, tag := range ewsElements {
		for _, e := range doc.FindElements("//" + tag) {
			e.Parent().RemoveChild(e)
			changed = true
		}
	}
	return changed
}

// hasText reports whether e holds character data of its own besides white
// space: a value, not a container of elements.
func hasText(e *etree.Element) bool {
	for _, t := range e.Child {
		if cd, ok := t.(*etree.CharData); ok && strings.TrimSpace(cd.Data) != "" {
			return true
		}
	}
	return false
}

// setChild makes e's child tag hold text alone, whatever it held before.
func setChild(e *etree.Element, tag, text string) {
	c := e.SelectElement(tag)
	if c == nil {
		c = e.CreateElement(tag)
	}
	setText(c, text)
}

// setText makes e hold text alone: SetText replaces only the first run of
// text, and would leave mixed-in markup and the text after it.
func setText(e *etree.Element, text string) {
	e.Child = nil
	e.SetText(text)
}

// validUpstreamAnswer re-validates a corrected answer: a POX settings
// document (outlook or mobilesync) that names no consumer host anywhere.
// An upstream error document is not passed on: the local answer is better.
func validUpstreamAnswer(doc *etree.Document) error {
	root := doc.Root()
	if root.Tag != "Autodiscover" || root.NamespaceURI() != xmlschema.NSResponse {
		return errors.New("root is not {responseschema/2006}Autodiscover")
	}
	resp := root.SelectElement("Response")
	if resp == nil {
		return errors.New("no Response")
	}
	switch resp.NamespaceURI() {
	case xmlschema.NSOutlookResponse:
		acct := resp.SelectElement("Account")
		if acct == nil || textOf(acct, "Action") != xmlschema.ActionSettings || len(acct.SelectElements("Protocol")) == 0 {
			return errors.New("outlook answer without settings")
		}
	case xmlschema.NSMobileSyncResponse:
		if resp.FindElement("Action/Settings/Server") == nil {
			return errors.New("mobilesync answer without a server")
		}
	default:
		return fmt.Errorf("Response namespace %q", resp.NamespaceURI())
	}
	var bad error
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		for _, a := range e.Attr {
			if config.MentionsConsumerHost(a.Value) {
				bad = fmt.Errorf("attribute %s names a consumer host", a.FullKey())
			}
		}
		if config.MentionsConsumerHost(fullText(e)) {
			bad = fmt.Errorf("<%s> names a consumer host", e.Tag)
		}
		for _, c := range e.ChildElements() {
			walk(c)
		}
	}
	walk(root)
	return bad
}
