package autodiscover

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"image"
	"image/draw"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/autodiscover-proxy/autodiscover-proxy/certs"
	"github.com/autodiscover-proxy/autodiscover-proxy/internal/testpki"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/smallstep/pkcs7"
	"howett.net/plist"
)

// Required keys and their plist types per payload kind (Apple's
// device-management reference, mdm/profiles/*.yaml).
var payloadKeys = map[string]map[string]reflect.Kind{
	"Configuration": {"PayloadType": reflect.String, "PayloadVersion": reflect.Uint64, "PayloadIdentifier": reflect.String,
		"PayloadUUID": reflect.String, "PayloadContent": reflect.Slice, "PayloadDisplayName": reflect.String, "PayloadOrganization": reflect.String},
	"com.apple.eas.account": {"PayloadType": reflect.String, "PayloadVersion": reflect.Uint64, "PayloadIdentifier": reflect.String,
		"PayloadUUID": reflect.String, "Host": reflect.String, "SSL": reflect.Bool, "OAuth": reflect.Bool,
		"EmailAddress": reflect.String, "UserName": reflect.String},
	"com.apple.mail.managed": {"PayloadType": reflect.String, "PayloadVersion": reflect.Uint64, "PayloadIdentifier": reflect.String,
		"PayloadUUID": reflect.String, "EmailAccountType": reflect.String, "EmailAddress": reflect.String,
		"IncomingMailServerHostName": reflect.String, "IncomingMailServerPortNumber": reflect.Uint64, "IncomingMailServerUseSSL": reflect.Bool,
		"IncomingMailServerAuthentication": reflect.String, "IncomingMailServerUsername": reflect.String,
		"OutgoingMailServerHostName": reflect.String, "OutgoingMailServerPortNumber": reflect.Uint64, "OutgoingMailServerUseSSL": reflect.Bool,
		"OutgoingMailServerAuthentication": reflect.String, "OutgoingMailServerUsername": reflect.String,
		"OutgoingPasswordSameAsIncomingPassword": reflect.Bool},
}

var uuidRE = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)

// readProfile parses a served profile back with the plist library and
// checks every required key, its type, and that nothing secret is in it.
func readProfile(t *testing.T, data []byte) (top map[string]any, payloads []map[string]any) {
	t.Helper()
	if _, err := plist.Unmarshal(data, &top); err != nil {
		t.Fatalf("not a property list: %v", err)
	}
	checkPayload(t, top)
	ids := map[string]bool{top["PayloadIdentifier"].(string): true}
	for _, p := range top["PayloadContent"].([]any) {
		m := p.(map[string]any)
		checkPayload(t, m)
		if ids[m["PayloadIdentifier"].(string)] {
			t.Errorf("PayloadIdentifier %s used twice", m["PayloadIdentifier"])
		}
		ids[m["PayloadIdentifier"].(string)] = true
		payloads = append(payloads, m)
	}
	for _, m := range append(payloads, top) {
		for _, secret := range []string{"Password", "IncomingPassword", "OutgoingPassword"} {
			if _, ok := m[secret]; ok {
				t.Errorf("profile holds %s", secret)
			}
		}
	}
	return top, payloads
}

func checkPayload(t *testing.T, m map[string]any) {
	t.Helper()
	kind, _ := m["PayloadType"].(string)
	want, ok := payloadKeys[kind]
	if !ok {
		t.Fatalf("unexpected PayloadType %q", kind)
	}
	for k, typ := range want {
		v, ok := m[k]
		if !ok {
			t.Errorf("%s: no %s", kind, k)
			continue
		}
		if got := reflect.TypeOf(v).Kind(); got != typ {
			t.Errorf("%s: %s is %v, want %v", kind, k, got, typ)
		}
	}
	if u, _ := m["PayloadUUID"].(string); !uuidRE.MatchString(u) {
		t.Errorf("%s: PayloadUUID %q is not a version-5 UUID", kind, u)
	}
	if id, _ := m["PayloadIdentifier"].(string); !strings.Contains(id, ".") || strings.ContainsAny(id, " @/") {
		t.Errorf("%s: PayloadIdentifier %q is not reverse DNS", kind, id)
	}
}

func readApple(check func(t *testing.T, top map[string]any, payloads []map[string]any)) func(*testing.T, string, []byte) {
	return func(t *testing.T, ct string, body []byte) {
		if ct != "application/x-apple-aspen-config" {
			t.Errorf("Content-Type %q", ct)
		}
		top, payloads := readProfile(t, body)
		check(t, top, payloads)
	}
}

func appleExchanges() []exchange {
	ok := http.StatusOK
	get := func(golden, target string, status int, read func(*testing.T, string, []byte)) exchange {
		return exchange{golden: golden, method: "GET", target: target, host: "autodiscover.contoso.com", status: status, read: read}
	}
	return []exchange{
		get("apple-microsoft365-eas", "/mobileconfig?email=jane%40contoso.com", ok, readApple(func(t *testing.T, top map[string]any, p []map[string]any) {
			want := map[string]any{"PayloadType": "com.apple.eas.account", "Host": "outlook.office365.com", "SSL": true, "OAuth": true,
				"EmailAddress": "jane@contoso.com", "UserName": "jane@contoso.com", "PayloadOrganization": "Contoso Ltd"}
			for k, v := range want {
				if p[0][k] != v {
					t.Errorf("%s = %v, want %v", k, p[0][k], v)
				}
			}
		})),
		get("apple-google-workspace-imap", "/mobileconfig/ann@example.org.mobileconfig", ok, readApple(func(t *testing.T, top map[string]any, p []map[string]any) {
			want := map[string]any{"PayloadType": "com.apple.mail.managed", "EmailAccountType": "EmailTypeIMAP",
				"IncomingMailServerHostName": "imap.gmail.com", "IncomingMailServerPortNumber": uint64(993), "IncomingMailServerUseSSL": true,
				"OutgoingMailServerHostName": "smtp.gmail.com", "OutgoingMailServerPortNumber": uint64(465), "OutgoingPasswordSameAsIncomingPassword": true}
			for k, v := range want {
				if p[0][k] != v {
					t.Errorf("%s = %v, want %v", k, p[0][k], v)
				}
			}
		})),
		get("apple-custom-imap", "/mobileconfig?email=bob%40tailspin.example&type=imap", ok, readApple(func(t *testing.T, top map[string]any, p []map[string]any) {
			if p[0]["IncomingMailServerUsername"] != `TAILSPIN\bob` || p[0]["OutgoingMailServerPortNumber"] != uint64(587) {
				t.Errorf("payload %v", p[0])
			}
		})),
		get("apple-custom-eas", "/mobileconfig?email=bob%40tailspin.example&type=eas", ok, readApple(func(t *testing.T, top map[string]any, p []map[string]any) {
			if p[0]["Host"] != "mail.tailspin.example" || p[0]["OAuth"] != false {
				t.Errorf("payload %v", p[0])
			}
		})),
		get("apple-exchange-eas", "/mobileconfig?email=nina%40northwind.example", ok, readApple(func(t *testing.T, top map[string]any, p []map[string]any) {
			if p[0]["PayloadType"] != "com.apple.eas.account" || p[0]["Host"] != "mail.northwind.example" || p[0]["OAuth"] != false {
				t.Errorf("payload %v", p[0])
			}
		})),
		exchange{golden: "apple-error-google-smtp-password-off-400", method: "GET", target: "/mobileconfig?email=lee%40litware.example", host: "autodiscover.litware.example", status: http.StatusBadRequest, read: plainText},
		exchange{golden: "setup-google-workspace-smtp-password-off", method: "GET", target: "/setup?email=lee%40litware.example", host: "autodiscover.litware.example", status: ok, read: readPage("lee@litware.example", false)},
		get("apple-error-microsoft365-imap-400", "/mobileconfig?email=jane%40contoso.com&type=imap", http.StatusBadRequest, plainText),
		get("apple-error-google-eas-400", "/mobileconfig?email=ann%40example.org&type=eas", http.StatusBadRequest, plainText),
		get("apple-error-unknown-domain-404", "/mobileconfig?email=eve%40unknown.example", http.StatusNotFound, plainText),
		get("apple-error-bad-address-400", "/mobileconfig?email=%3Cscript%3E", http.StatusBadRequest, plainText),
		get("setup-form", "/setup", ok, readPage("", false)),
		get("setup-microsoft365", "/setup?email=jane%40contoso.com", ok, readPage("jane@contoso.com", true)),
		get("setup-google-workspace", "/setup?email=ann%40example.org", ok, readPage("ann@example.org", true)),
		get("setup-exchange", "/setup?email=nina%40northwind.example", ok, readPage("nina@northwind.example", true)),
		get("setup-custom", "/setup?email=bob%40tailspin.example", ok, readPage("bob@tailspin.example", true)),
		// In the browser's language; the switcher's choice wins over it.
		withLanguage(get("setup-microsoft365-de", "/setup?email=jane%40contoso.com", ok, readPage("jane@contoso.com", true)), "de-AT,de;q=0.9,en;q=0.5"),
		withLanguage(get("setup-google-workspace-lang-fr", "/setup?email=ann%40example.org&lang=fr", ok, readPage("ann@example.org", true)), "de"),
		withLanguage(get("setup-form-pt-br", "/", ok, readPage("", false)), "pt-BR"),
		// The U-label for people; password SMTP kept on past the date, with
		// the administrator's part.
		get("setup-idn", "/setup?email=jan%40m%C3%BCller.example", ok, readPage("jan@müller.example", true)),
		afterCutoffAt(get("setup-microsoft365-smtp-password-on", "/setup?email=ann%40woodgrove.example", ok, readPage("ann@woodgrove.example", true))),
		get("setup-unknown-domain", "/setup?email=eve%40unknown.example", ok, readPage("eve@unknown.example", false)),
	}
}

// The same user gets the same profile, byte for byte; another user a
// different one.
func TestProfileDeterministic(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	get := func(addr string) string {
		return exchange{method: "GET", target: "/mobileconfig?email=" + addr}.serve(s).Body.String()
	}
	if a, b := get("jane@contoso.com"), get("jane@contoso.com"); a != b {
		t.Error("two profiles for the same user differ")
	}
	if a, b := get("jane@contoso.com"), get("john@contoso.com"); a == b || strings.Contains(b, "jane") {
		t.Error("two users get the same profile")
	}
}

// testChain makes a chain for hosts and writes its root to dir/ca.pem.
func testChain(t *testing.T, dir string, hosts ...string) (*tls.Certificate, *x509.CertPool, string) {
	t.Helper()
	c := testpki.New(t, hosts...)
	_, _, caFile := c.WriteFiles(t, dir)
	return c.Cert, c.Roots, caFile
}

// Profiles are signed with the certificate that serves the host: CMS
// SignedData, SHA-256, content embedded, DER, intermediates included.
// Verified in Go and by openssl; a tampered profile fails both.
func TestProfileSigned(t *testing.T) {
	dir := t.TempDir()
	cert, roots, caFile := testChain(t, dir, "autodiscover.contoso.com", "autoconfig.contoso.com")
	s := newTestServer(t, beforeCutoff, io.Discard)
	s.Certificates = certs.NewStatic(cert, true)
	e := exchange{method: "GET", target: "/mobileconfig?email=jane%40contoso.com", host: "autodiscover.contoso.com"}
	signed := e.serve(s).Body.Bytes()
	s.Certificates = nil
	unsigned := e.serve(s).Body.Bytes()

	p7, err := pkcs7.Parse(signed)
	if err != nil {
		t.Fatalf("not CMS: %v", err)
	}
	if err := p7.VerifyWithChain(roots); err != nil {
		t.Fatalf("signature does not verify against the test root: %v", err)
	}
	if !bytes.Equal(p7.Content, unsigned) {
		t.Error("the embedded content is not the profile")
	}
	if len(p7.Certificates) != 2 {
		t.Errorf("%d certificates in the signature, want leaf and intermediate", len(p7.Certificates))
	}
	if !p7.Signers[0].DigestAlgorithm.Algorithm.Equal(pkcs7.OIDDigestAlgorithmSHA256) {
		t.Errorf("digest %v, want SHA-256", p7.Signers[0].DigestAlgorithm.Algorithm)
	}
	tampered := bytes.Replace(signed, []byte("outlook.office365.com"), []byte("outlook.office365.con"), 1)
	if bytes.Equal(tampered, signed) {
		t.Fatal("tampering changed nothing")
	}
	if p, err := pkcs7.Parse(tampered); err == nil && p.VerifyWithChain(roots) == nil {
		t.Error("a tampered profile verifies")
	}

	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl not installed: .ci/run installs Debian's openssl")
		}
		t.Skip("openssl not installed")
	}
	verify := func(data []byte) ([]byte, error) {
		in := filepath.Join(dir, "profile.der")
		os.WriteFile(in, data, 0o600)
		// -purpose any: Apple accepts TLS server certificates for profiles.
		return exec.Command(openssl, "cms", "-verify", "-inform", "DER", "-in", in, "-CAfile", caFile, "-purpose", "any").Output()
	}
	out, err := verify(signed)
	if err != nil {
		t.Fatalf("openssl cms -verify: %v", err)
	}
	if !bytes.Equal(out, unsigned) {
		t.Error("openssl's verified content is not the profile")
	}
	if _, err := verify(tampered); err == nil {
		t.Error("openssl verifies a tampered profile")
	}
}

// Markup and script in the address come back escaped, everywhere.
func TestSetupPageEscapes(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	for _, evil := range []string{`<script>alert(1)</script>@contoso.com`, `"><img src=x onerror=alert(1)>`, `jane@contoso.com"><script>x</script>`} {
		w := exchange{method: "GET", target: "/setup?email=" + urlQuery(evil)}.serve(s)
		body := w.Body.String()
		if w.Code != 200 || strings.Contains(body, "<script>") || strings.Contains(body, "<img src=x") {
			t.Errorf("%q not escaped:\n%s", evil, body)
		}
		if !strings.Contains(body, "&lt;") && !strings.Contains(body, "&#34;") {
			t.Errorf("%q: no escaped form of the input on the page", evil)
		}
	}
}

// Two addresses of a served domain get the same page, but for the address
// itself: nothing tells whether a mailbox exists.
func TestSetupPageRevealsNoMailbox(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	page := func(local string) string {
		b := exchange{method: "GET", target: "/setup?email=" + local + "%40contoso.com", host: "autodiscover.contoso.com"}.serve(s).Body.String()
		b = strings.ReplaceAll(b, string(breakable(local+"@contoso.com")), "ADDR")
		b = strings.ReplaceAll(b, local+"@contoso.com", "ADDR")
		b = strings.ReplaceAll(b, local+"%40contoso.com", "ADDR")
		return regexp.MustCompile(`<svg class="qr".*?</svg>`).ReplaceAllString(b, "QR")
	}
	if a, b := page("jane"), page("nobody-here-xyz"); a != b {
		t.Error("the page differs between two addresses beyond the address itself")
	}
}

func urlQuery(s string) string {
	return strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", "#", "%23", " ", "%20", "<", "%3C", ">", "%3E", `"`, "%22").Replace(s)
}

// The setup page's QR code is the code's matrix, module for module, with
// its quiet zone: read back from the SVG, not from the code that drew it.
// The QR code on the page is read back by an independent decoder (ZXing's
// Go port), as a phone's camera reads it: the SVG's rectangles drawn into
// a bitmap, quiet zone included, give the profile URL.
func TestQRCodeSVG(t *testing.T) {
	for _, u := range []string{
		"https://autodiscover.contoso.com/mobileconfig?email=jane%40contoso.com",
		"https://autodiscover.xn--bcher-kva.example/mobileconfig?email=" + strings.Repeat("a", 64) + "%40xn--bcher-kva.example",
	} {
		svg := string(qrSVG(u))
		var doc struct {
			XMLName xml.Name
			ViewBox string `xml:"viewBox,attr"`
			Label   string `xml:"aria-label,attr"`
			Paths   []struct {
				D string `xml:"d,attr"`
			} `xml:"path"`
		}
		if err := xml.Unmarshal([]byte(svg), &doc); err != nil || doc.XMLName.Local != "svg" || len(doc.Paths) != 1 || doc.Label == "" {
			t.Fatalf("not one labelled SVG path (%v): %.200s", err, svg)
		}
		var size int
		if _, err := fmt.Sscanf(doc.ViewBox, "0 0 %d %d", &size, &size); err != nil {
			t.Fatalf("viewBox %q", doc.ViewBox)
		}
		d := regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-(\d+)z`)
		if rest := d.ReplaceAllString(doc.Paths[0].D, ""); rest != "" {
			t.Fatalf("path has more than rectangles: %q", rest)
		}
		const px = 4 // pixels a module
		img := image.NewGray(image.Rect(0, 0, size*px, size*px))
		draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
		for _, m := range d.FindAllStringSubmatch(doc.Paths[0].D, -1) {
			x, _ := strconv.Atoi(m[1])
			y, _ := strconv.Atoi(m[2])
			w, _ := strconv.Atoi(m[3])
			if back, _ := strconv.Atoi(m[4]); back != w {
				t.Fatalf("rectangle %q does not close", m[0])
			}
			if x < 4 || y < 4 || x+w > size-4 || y >= size-4 {
				t.Fatalf("rectangle %q is in the 4-module quiet zone of a %d-module box", m[0], size)
			}
			draw.Draw(img, image.Rect(x*px, y*px, (x+w)*px, (y+1)*px), image.Black, image.Point{}, draw.Src)
		}
		bmp, err := gozxing.NewBinaryBitmapFromImage(img)
		if err != nil {
			t.Fatal(err)
		}
		res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
		if err != nil {
			t.Fatalf("the QR code cannot be read: %v", err)
		}
		if res.GetText() != u {
			t.Errorf("the QR code reads %q, want %q", res.GetText(), u)
		}
	}
}

func withLanguage(e exchange, acceptLanguage string) exchange {
	e.header = http.Header{"Accept-Language": {acceptLanguage}}
	return e
}

func afterCutoffAt(e exchange) exchange {
	e.now = afterCutoff
	return e
}
