package autodiscover

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/clientcheck"
)

// askSOAP posts body to the SOAP endpoint.
func askSOAP(s *Server, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/autodiscover/autodiscover.svc", strings.NewReader(body))
	r.Host = "autodiscover.contoso.com"
	w := httptest.NewRecorder()
	s.HTTPSHandler().ServeHTTP(w, r)
	return w
}

// definedNames is every setting name Exchange defines, sorted.
func definedNames() []string {
	var names []string
	for n := range definedSettings {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// The worst SOAP request the cost model lets through, within the 64 KiB
// body cap: 100 users with the longest addresses, every defined setting
// and the most unknown ones at the longest length. Its answer is within
// maxSOAPAnswer, and is an answer, not an error.
func TestSOAPWorstAnswer(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	var users []string
	for i := range maxSOAPUsers {
		local := strings.Repeat("a", 62) + string(rune('a'+i/26)) + string(rune('a'+i%26))
		users = append(users, local+"@northwind.example") // a domain with every protocol
	}
	names := definedNames()
	for i := range maxUnknownSettings {
		names = append(names, strings.Repeat("X", maxSettingName-2)+string(rune('a'+i/26))+string(rune('a'+i%26)))
	}
	body := soapBody("GetUserSettings", users, names...)
	if len(body) > maxPOXBody {
		t.Fatalf("the worst request is %d bytes, over the %d-byte body cap", len(body), maxPOXBody)
	}
	w := askSOAP(s, body)
	a, err := clientcheck.ReadSOAP(w.Code, w.Header().Get("Content-Type"), w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if a.ErrorCode != "NoError" || len(a.Users) != maxSOAPUsers {
		t.Fatalf("the worst request got %s with %d users, want an answer for %d", a.ErrorCode, len(a.Users), maxSOAPUsers)
	}
	t.Logf("worst SOAP answer: %d bytes for a %d-byte request", w.Body.Len(), len(body))
	if w.Body.Len() > maxSOAPAnswer {
		t.Errorf("the worst answer is %d bytes, over maxSOAPAnswer %d", w.Body.Len(), maxSOAPAnswer)
	}
}

// Setting names: repeats are answered once; past maxUnknownSettings names
// nobody defines, or with a name longer than any, the request is
// InvalidRequest, as Exchange answers a request it will not serve.
func TestSOAPSettingNamesBounded(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	settingName := regexp.MustCompile(`<(?:SettingName|Name)>([^<]*)<`)

	var repeated []string
	for range 1500 / 2 { // as many as the 64 KiB body holds
		repeated = append(repeated, "CasVersion", "X")
	}
	w := askSOAP(s, soapBody("GetUserSettings", []string{"jane@contoso.com"}, repeated...))
	var got []string
	for _, m := range settingName.FindAllStringSubmatch(w.Body.String(), -1) {
		got = append(got, m[1])
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"CasVersion", "X"}) {
		t.Errorf("1,500 repeats of two names answered as %d entries: %v", len(got), got)
	}

	invalid := func(what string, names ...string) {
		t.Helper()
		w := askSOAP(s, soapBody("GetUserSettings", []string{"jane@contoso.com"}, names...))
		a, err := clientcheck.ReadSOAP(w.Code, w.Header().Get("Content-Type"), w.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if a.ErrorCode != "InvalidRequest" || len(a.Users) != 0 {
			t.Errorf("%s: %s with %d users, want InvalidRequest", what, a.ErrorCode, len(a.Users))
		}
	}
	var unknown []string
	for i := range maxUnknownSettings + 1 {
		unknown = append(unknown, "Unknown"+string(rune('A'+i)))
	}
	invalid("one unknown name too many", unknown...)
	invalid("a name longer than any", "UserDisplayName", strings.Repeat("X", maxSettingName+1))
	if w := askSOAP(s, soapBody("GetUserSettings", []string{"jane@contoso.com"}, append(definedNames(), unknown[:maxUnknownSettings]...)...)); !strings.Contains(w.Body.String(), "<ErrorCode>NoError</ErrorCode>") {
		t.Errorf("every defined name and %d unknown ones: not answered\n%.400s", maxUnknownSettings, w.Body)
	}
}

// Answers share a budget of bytes: while others hold it, a request waits,
// then gets 503 with Retry-After; answers over largeAnswer never take the
// quarter kept for ordinary answers.
func TestAnswerBudget(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	budget := int64(s.Config().Limits.AnswerMemoryBytes)
	b := s.answerMemory

	var large []func()
	for {
		release, ok := b.acquire(soon(t), 2<<20)
		if !ok {
			break
		}
		large = append(large, release)
	}
	if held := int64(len(large)) * 2 << 20; held > budget/4*3 || held < budget/4*3-2<<20 {
		t.Errorf("large answers hold %d of %d bytes, want about three quarters", held, budget)
	}
	if w := askSOAP(s, soapBody("GetUserSettings", []string{"jane@contoso.com"}, "UserDisplayName")); w.Code != http.StatusOK {
		t.Errorf("an ordinary answer while large ones hold their share: %d", w.Code)
	}

	var small []func()
	for {
		release, ok := b.acquire(soon(t), largeAnswer)
		if !ok {
			break
		}
		small = append(small, release)
	}
	if held := int64(len(large))*2<<20 + int64(len(small))*largeAnswer; held != budget {
		t.Errorf("%d of %d bytes could be taken in all", held, budget)
	}
	w := askSOAP(s, soapBody("GetUserSettings", []string{"jane@contoso.com"}, "UserDisplayName"))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("with the budget full: %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	for _, release := range append(large, small...) {
		release()
	}
	if w := askSOAP(s, soapBody("GetUserSettings", []string{"jane@contoso.com"}, "UserDisplayName")); w.Code != http.StatusOK {
		t.Errorf("after the budget was given back: %d", w.Code)
	}
}

// soon is a context that ends soon: acquire takes what is free now, or
// nothing after a short wait (the result does not depend on its length).
func soon(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}
