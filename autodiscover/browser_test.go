package autodiscover

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/certs"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/internal/systemtest"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/smallstep/pkcs7"
)

// chromiumPath finds Debian's chromium, for a system test.
func chromiumPath(t *testing.T) string {
	systemtest.Require(t, "the setup page in chromium")
	return systemtest.Tool(t, "chromium", "chromium", "chromium-browser")
}

// artifactDir is where the test keeps its screenshot: $ARTIFACTS_DIR, or
// testdata/artifacts (not committed).
func artifactDir(t *testing.T) string {
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A person on a phone-sized window: open the setup page, enter an address,
// see the settings table with the right hosts, follow the profile link and
// get a signed profile.
func TestSetupPageInChromium(t *testing.T) {
	exe := chromiumPath(t)
	dir := t.TempDir()
	cert, roots, _ := testChain(t, dir, "autodiscover.contoso.com")
	s := newTestServer(t, beforeCutoff, io.Discard)
	s.Certificates = certs.NewStatic(cert, true)
	ts := httptest.NewUnstartedServer(s.HTTPSHandler())
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	ts.StartTLS()
	defer ts.Close()
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	s.HTTPSPort, _ = strconv.Atoi(port)
	base := "https://autodiscover.contoso.com:" + port

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Loopback only: the test host name resolves to 127.0.0.1, nothing else resolves.
		chromedp.Flag("host-resolver-rules", "MAP autodiscover.contoso.com 127.0.0.1, MAP * ~NOTFOUND"),
		// The test CA is not in chromium's store; the Go checks below verify the chain.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(390, 844),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	downloads := filepath.Join(dir, "downloads")
	yes := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: &yes,
	}); err != nil {
		t.Fatalf("browser: %v", err)
	}
	email, submit, link := chromedp.CSS("#email"), chromedp.CSS("button[type=submit]"), chromedp.CSS(`a[href*="mobileconfig"]`)
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(email),
		chromedp.SendKeys(email, "jane@contoso.com"),
		chromedp.Click(submit),
		chromedp.WaitVisible(chromedp.CSS("table")),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	label, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("label[for=email]")))
	if err != nil || label != "Your e-mail address" {
		t.Errorf("the address field's label is %q (%v)", label, err)
	}
	table, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("table")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"outlook.office365.com", "993", "995", "smtp.office365.com", "587", "STARTTLS", "jane@contoso.com"} {
		if !strings.Contains(table, want) {
			t.Errorf("settings table lacks %q:\n%s", want, table)
		}
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	shotFile := filepath.Join(artifactDir(t), "setup-page.png")
	if err := os.WriteFile(shotFile, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shotFile)
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(link, "href"))
	if want := base + "/mobileconfig?email=jane%40contoso.com"; err != nil || href.Value != want {
		t.Fatalf("profile link %q (%v), want %q", href.Value, err, want)
	}

	// Follow the link: the browser downloads the profile.
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress) // subscribed from here on
	if err := chromedp.Do(ctx, chromedp.Click(link)); err != nil {
		t.Fatalf("click the profile link: %v", err)
	}
	var guid string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("the profile download did not complete: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			guid = ev.GUID
			break
		}
	}
	data, err := os.ReadFile(filepath.Join(downloads, guid))
	if err != nil {
		t.Fatal(err)
	}
	p7, err := pkcs7.Parse(data)
	if err != nil {
		t.Fatalf("downloaded profile is not CMS: %v", err)
	}
	if err := p7.VerifyWithChain(roots); err != nil {
		t.Fatalf("downloaded profile's signature: %v", err)
	}
	_, payloads := readProfile(t, p7.Content)
	if payloads[0]["PayloadType"] != "com.apple.eas.account" || payloads[0]["EmailAddress"] != "jane@contoso.com" {
		t.Errorf("downloaded profile payload %v", payloads[0])
	}
}

// wrapCheck is run in the page: every line break inside a host or user
// name falls right after a dot, @ or backslash; no note box overlaps the
// QR code, which a desktop shows and a phone does not; the caption stands
// above the rows; no date is split across lines. It returns the problems
// found, as text.
const wrapCheck = `(() => {
  const problems = [];
  for (const code of document.querySelectorAll("td code")) {
    const text = code.textContent;
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    let prevTop = null, prevChar = "", node;
    while ((node = walker.nextNode())) {
      for (let i = 0; i < node.length; i++) {
        const r = document.createRange();
        r.setStart(node, i); r.setEnd(node, i + 1);
        const rect = r.getClientRects()[0];
        if (!rect) continue;
        if (prevTop !== null && rect.top > prevTop + 2 && !".@\\\\".includes(prevChar)) {
          problems.push(text + " breaks after '" + prevChar + "'");
        }
        prevTop = rect.top; prevChar = node.data[i];
      }
    }
  }
  const phone = window.innerWidth <= 640;
  const qr = document.querySelector(".qr");
  if (qr) {
    const q = qr.getBoundingClientRect();
    if (phone && q.width > 0) {
      problems.push("a QR code on a phone, which cannot scan its own screen");
    }
    if (!phone && q.width === 0) {
      problems.push("no QR code on a desktop");
    }
    for (const n of document.querySelectorAll(".note")) {
      const b = n.getBoundingClientRect();
      if (q.width > 0 && b.left < q.right && b.right > q.left && b.top < q.bottom && b.bottom > q.top) {
        problems.push("a note box runs under the QR code");
      }
    }
  }
  // The caption stands above the table, across it, not squeezed beside it.
  const cap = document.querySelector("caption"), row = document.querySelector("tbody tr"), table = document.querySelector("table");
  if (cap && row) {
    const c = cap.getBoundingClientRect(), r = row.getBoundingClientRect(), tb = table.getBoundingClientRect();
    if (c.bottom > r.top + 1 || c.width < 0.8 * tb.width) {
      problems.push("the caption (" + Math.round(c.width) + " px wide, bottom " + Math.round(c.bottom) + ") is not above the rows (top " + Math.round(r.top) + ") across the table (" + Math.round(tb.width) + " px)");
    }
  }
  // A date is never split across lines.
  const date = /\d{1,2}[.\/-]\d{2}[.\/-]\d{4}|\d{1,2}\u00a0\S+\u00a0\d{4}/;
  for (const td of document.querySelectorAll("td")) {
    const node = td.firstChild, m = node && node.nodeType === 3 ? date.exec(node.data) : null;
    if (!m) continue;
    const tops = new Set();
    for (let i = m.index; i < m.index + m[0].length; i++) {
      const r = document.createRange();
      r.setStart(node, i); r.setEnd(node, i + 1);
      const rect = r.getClientRects()[0];
      if (rect) tops.add(Math.round(rect.top));
    }
    if (tops.size > 1) {
      problems.push("the date " + m[0] + " is split across lines");
    }
  }
  return problems.join("\n");
})()`

// The page as people see it: desktop and phone, English and German, with
// a long host name and a domain name in Unicode. Screenshots are kept as
// artifacts (look at them); the checks say what they must show.
func TestSetupPageLayout(t *testing.T) {
	exe := chromiumPath(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgFile, []byte(`domains:
  - name: contoso.com
    provider: microsoft365
    display_name: Contoso Ltd
  - name: "bücher.example"
    provider: custom
    imap: {host: imap-eu-west-3.mailcluster-frankfurt.bücher.example, port: 993, tls: ssl}
    smtp: {host: submission-eu-west-3.mailcluster-frankfurt.bücher.example, port: 587, tls: starttls}
`), 0o600)
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return beforeCutoff }
	s.Log = slog.New(slog.DiscardHandler)
	ts := httptest.NewServer(s.HTTPSHandler())
	defer ts.Close()
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())

	for _, tc := range []struct {
		name, lang, email string
		width, height     int
		want              []string
	}{
		{"desktop-en", "en-GB", "anna.maria.longname@xn--bcher-kva.example", 1280, 900, []string{"Mail setup for bücher.example", "anna.maria.longname@bücher.example", "submission-eu-west-3.mailcluster-frankfurt.xn--bcher-kva.example"}},
		{"phone-en", "en-GB", "jane@contoso.com", 390, 844, []string{"Mail setup for Contoso Ltd", "outlook.office365.com", "Authenticated SMTP"}},
		{"desktop-de", "de-DE", "jane@contoso.com", 1280, 900, []string{"E-Mail einrichten für Contoso Ltd", "Verschlüsselung", "Authentifiziertes SMTP"}},
		{"phone-de", "de-DE", "anna.maria.longname@xn--bcher-kva.example", 390, 844, []string{"E-Mail-Einstellungen für anna.maria.longname@bücher.example", "imap-eu-west-3.mailcluster-frankfurt.xn--bcher-kva.example"}},
		{"phone-fr", "fr-FR", "jane@contoso.com", 390, 844, []string{"Configuration de la messagerie de Contoso Ltd", "31/12/2026", "saisissez seulement votre adresse"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []chromedp.ExecAllocatorOption{
				chromedp.ExecPath(exe),
				chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
				chromedp.UserDataDir(filepath.Join(dir, "profile-"+tc.name)),
				chromedp.Flag("disable-background-networking", true),
				chromedp.Flag("disable-component-update", true),
				chromedp.Flag("host-resolver-rules", "MAP autodiscover.contoso.com 127.0.0.1, MAP * ~NOTFOUND"),
				chromedp.Flag("lang", tc.lang),
				chromedp.Flag("accept-lang", tc.lang), // the browser's Accept-Language
				chromedp.WindowSize(tc.width, tc.height),
			}
			actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
			defer cancel()
			ctx, cancel := chromedp.NewContext(actx)
			defer cancel()
			ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			if err := chromedp.Do(ctx,
				chromedp.Navigate("http://autodiscover.contoso.com:"+port+"/setup?email="+url.QueryEscape(tc.email)),
				chromedp.WaitVisible(chromedp.CSS("table")),
			); err != nil {
				t.Fatalf("browser: %v", err)
			}
			text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("the page does not show %q", w)
				}
			}
			problems, err := chromedp.Run(ctx, chromedp.Evaluate[string](wrapCheck))
			if err != nil {
				t.Fatal(err)
			}
			if problems != "" {
				t.Errorf("layout:\n%s", problems)
			}
			shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(artifactDir(t), "setup-"+tc.name+".png")
			if err := os.WriteFile(f, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", f)
		})
	}
}
