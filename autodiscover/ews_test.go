package autodiscover

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// ewsMarks are what points a client at EWS in any dialect: the URL path,
// POX's EwsUrl and ASUrl, autoconfig's ews entries, SOAP's and v2's URL.
var ewsMarks = []string{"/EWS/", "<EwsUrl>", "<ASUrl>", `type="ews"`, `type="exchange"`, "<Name>ExternalEwsVersion</Name>", "<Name>EwsSupportedSchemas</Name>"}

// Where EWS is off, no answer in any dialect points a client at it: a
// Microsoft 365 domain under ews_access: auto after the date Exchange
// Online switched EWS off, every domain under off, and every domain after
// Microsoft's retirement date even under on.
func TestNoEWSWhereItIsOff(t *testing.T) {
	cases := []struct {
		name, user string
		now        time.Time
		ews        bool
	}{
		{"microsoft365, auto, before the switch-off", "jane@contoso.com", time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC), true},
		{"microsoft365, auto, after the switch-off", "jane@contoso.com", beforeCutoff, false},
		{"microsoft365, on", "ann@tailwind.example", beforeCutoff, true},
		{"microsoft365, on, after the retirement", "ann@tailwind.example", time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC), false},
		{"exchange, auto", "nina@northwind.example", beforeCutoff, true},
		{"exchange, off", "lee@wingtip.example", beforeCutoff, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.now, io.Discard)
			domain := tc.user[strings.IndexByte(tc.user, '@')+1:]
			for _, req := range []struct {
				method, target, body string
				header               string
			}{
				{"POST", "/autodiscover/autodiscover.xml", poxBody(reqOutlook, tc.user, respOutlook), ""},
				{"POST", "/autodiscover/autodiscover.xml", poxBody(reqOutlook, tc.user, respOutlook), outlookHeader},
				{"POST", "/autodiscover/autodiscover.xml", poxBody(reqMobile, tc.user, respMobile), ""},
				{"POST", "/autodiscover/autodiscover.svc", soapBody("GetUserSettings", []string{tc.user}, "ExternalEwsUrl", "InternalEwsUrl", "EwsSupportedSchemas", "ExternalEwsVersion"), ""},
				{"POST", "/autodiscover/autodiscover.svc", soapBody("GetDomainSettings", []string{domain}, "ExternalEwsUrl", "ExternalEwsVersion"), ""},
				{"GET", "/autodiscover/autodiscover.json?Protocol=Ews&Email=" + tc.user, "", ""},
				{"GET", "/mail/config-v1.1.xml?emailaddress=" + tc.user, "", ""},
				{"GET", "/mobileconfig?email=" + tc.user, "", ""},
				{"GET", "/setup?email=" + tc.user, "", ""},
			} {
				r := httptest.NewRequest(req.method, req.target, strings.NewReader(req.body))
				r.Host = "autodiscover." + domain
				if req.header != "" {
					r.Header.Set(req.header, "1")
				}
				w := httptest.NewRecorder()
				s.HTTPSHandler().ServeHTTP(w, r)
				body := w.Body.String()
				found := ""
				for _, m := range ewsMarks {
					if strings.Contains(body, m) {
						found = m
					}
				}
				if tc.ews && req.target == "/autodiscover/autodiscover.svc" && found == "" && strings.Contains(req.body, "GetUser") {
					t.Errorf("EWS is on, and SOAP names no EWS URL")
				}
				if !tc.ews && found != "" {
					t.Errorf("%s %s%s: %s in an answer while EWS is off:\n%.600s", req.method, req.target, map[bool]string{true: " (Outlook desktop)"}[req.header != ""], found, body)
				}
				if req.target == "/autodiscover/autodiscover.json?Protocol=Ews&Email="+tc.user && (w.Code == http.StatusOK) != tc.ews {
					t.Errorf("v2 Ews: HTTP %d, EWS on: %v", w.Code, tc.ews)
				}
			}
		})
	}
}
