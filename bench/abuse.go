package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// abuseRow is one figure of the abuse measurements, with its target.
type abuseRow struct {
	name, value, target string
	met                 bool
}

// Abuse targets.
const (
	targetSetupShare     = 0.2  // setup pages per second, against JSON answers
	targetFloodP99Factor = 2.0  // JSON p99 under a setup-page flood, against alone
	targetUpstreamRSSMB  = 128  // through 30 s of 250 KB upstream answers
	beyondCap            = 5000 // connection attempts past the cap
)

// setupLua asks the setup page for one address, as a person reloading it.
const setupLua = `wrk.headers["Host"] = "autodiscover.` + domain + `"
`

// floodLua asks for the setup page of a new address each time (each needs
// its own QR code), from a new client each time: a trusted proxy (the
// bench config trusts 127.0.0.1) names a different address in
// X-Forwarded-For, so no per-client limit applies.
const floodLua = `wrk.headers["Host"] = "autodiscover.` + domain + `"
counter = 0
request = function()
  counter = counter + 1
  wrk.headers["X-Forwarded-For"] = "10." .. (counter % 250) .. "." .. (math.floor(counter / 250) % 250) .. ".1"
  return wrk.format("GET", "/setup?email=u" .. counter .. "%40` + domain + `")
end
`

const jsonLua = `wrk.headers["Host"] = "autodiscover.` + domain + `"
`

// abuse measures what hostile traffic costs, on loopback: setup pages
// against JSON answers; JSON latency with and without a flood of setup
// pages; memory through unique addresses answered by a 250 KB upstream;
// connection attempts beyond the listener's cap.
func abuse(bin, dir, cert, key string) ([]abuseRow, error) {
	var rows []abuseRow
	// The page budget per client is raised for the first row (one client
	// asks over and over); the flood comes from a new client each time.
	ours, err := startOursWith(bin, dir, cert, key, "limits: {pages_per_client_per_minute: 100000}\n", "", nil)
	if err != nil {
		return nil, err
	}
	defer ours.stop()
	script := filepath.Join(dir, "abuse.lua")
	jsonURL := ours.url(true) + "/autodiscover/autodiscover.json?Email=jane@" + domain + "&Protocol=ActiveSync"
	fmt.Fprintln(os.Stderr, "abuse: setup pages against JSON")
	wrkScript(script, jsonLua, jsonURL, 16, 3*time.Second) // warm-up
	js, err := wrkScript(script, jsonLua, jsonURL, 16, *duration*2)
	if err != nil {
		return nil, err
	}
	setup, err := wrkScript(script, setupLua, ours.url(true)+"/setup?email=jane%40"+domain, 16, *duration*2)
	if err != nil {
		return nil, err
	}
	share := setup.rps / js.rps
	rows = append(rows, abuseRow{"setup page / JSON answers, 16 keep-alive HTTPS connections each",
		fmt.Sprintf("%.0f/s / %.0f/s = %.2f", setup.rps, js.rps, share), fmt.Sprintf("≥ %.1f", targetSetupShare), share >= targetSetupShare})

	fmt.Fprintln(os.Stderr, "abuse: JSON p99 under a setup-page flood")
	paced := jsonLua + fmt.Sprintf("function delay() return %d end\n", int(16*1000/(js.rps/4)))
	alone, err := wrkScript(script, paced, jsonURL, 16, *duration*2)
	if err != nil {
		return nil, err
	}
	// underFlood is JSON's p99 while 16 connections flood url with the
	// script floodScript, as a factor of its p99 alone.
	underFlood := func(floodScript, url string) (string, float64, error) {
		flood := make(chan error, 1)
		go func() {
			_, err := wrkScript(filepath.Join(dir, "flood.lua"), floodScript, url, 16, *duration*2+2*time.Second)
			flood <- err
		}()
		time.Sleep(time.Second)
		under, err := wrkScript(script, paced, jsonURL, 16, *duration*2)
		if ferr := <-flood; err == nil {
			err = ferr
		}
		if err != nil {
			return "", 0, err
		}
		f := millis(under.p99) / millis(alone.p99)
		return fmt.Sprintf("%s / %s = %.2f", under.p99, alone.p99, f), f, nil
	}
	figure, factor, err := underFlood(floodLua, ours.url(true)+"/setup")
	if err != nil {
		return nil, err
	}
	rows = append(rows, abuseRow{"JSON p99 at a quarter of its rate: under a 16-connection flood of setup pages (a new address and client each) / alone",
		figure, fmt.Sprintf("≤ %.0f×", targetFloodP99Factor), factor <= targetFloodP99Factor})

	fmt.Fprintln(os.Stderr, "abuse: JSON p99 under a setup-page flood from one client (default limits)")
	ours.stop()
	if ours, err = startOurs(bin, dir, cert, key); err != nil {
		return nil, err
	}
	defer ours.stop()
	jsonURL = ours.url(true) + "/autodiscover/autodiscover.json?Email=jane@" + domain + "&Protocol=ActiveSync"
	wrkScript(script, jsonLua, jsonURL, 16, 3*time.Second) // warm-up
	if alone, err = wrkScript(script, paced, jsonURL, 16, *duration*2); err != nil {
		return nil, err
	}
	if figure, factor, err = underFlood(setupLua+allowNon2xx+"\n", ours.url(true)+"/setup?email=jane%40"+domain); err != nil {
		return nil, err
	}
	rows = append(rows, abuseRow{"the same, the flood from one client (default page limit: 429s past 30 a minute)",
		figure, fmt.Sprintf("≤ %.0f×", targetFloodP99Factor), factor <= targetFloodP99Factor})

	// The yardstick: the same 16 connections asking for JSON answers
	// instead, the cheapest request there is. What a flood of anything
	// does to p99 on this machine (the load generator shares its CPUs).
	fmt.Fprintln(os.Stderr, "abuse: JSON p99 under a flood of JSON answers (the yardstick)")
	if figure, _, err = underFlood(jsonLua, jsonURL); err != nil {
		return nil, err
	}
	rows = append(rows, abuseRow{"yardstick: the same, the flood asking JSON answers (no target: any flood's cost on this machine)", figure, "", true})

	fmt.Fprintln(os.Stderr, "abuse: connection attempts beyond the cap")
	var held []net.Conn
	for range 512 + beyondCap {
		c, err := net.DialTimeout("tcp", ours.httpAddr, 5*time.Second)
		if err != nil {
			break
		}
		held = append(held, c)
	}
	start := time.Now()
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest("GET", "http://"+ours.httpAddr+"/mail/config-v1.1.xml?emailaddress=a@"+domain, nil)
	resp, err := c.Do(req)
	answered := err == nil && resp.StatusCode == 200
	if err == nil {
		resp.Body.Close()
	}
	took := time.Since(start)
	rss, _ := peakRSS(ours.cmd.Process.Pid)
	for _, h := range held {
		h.Close()
	}
	rows = append(rows, abuseRow{fmt.Sprintf("%d silent connections open (%d beyond the cap): a new request", len(held), max(0, len(held)-512)),
		fmt.Sprintf("answered %v after %s; peak RSS %.0f MB", answered, took.Round(time.Millisecond), rss), "answered, RSS < 128 MB", answered && rss < 128})
	ours.stop()

	fmt.Fprintln(os.Stderr, "abuse: 30 s of 250 KB upstream answers for unique addresses")
	upURL, caFile, stop, err := fakeUpstream(dir)
	if err != nil {
		return nil, err
	}
	defer stop()
	up, err := startOursWith(bin, dir, cert, key, "", "    upstream: {url: '"+upURL+"'}\n", []string{"SSL_CERT_FILE=" + caFile})
	if err != nil {
		return nil, err
	}
	defer up.stop()
	poxLua := `wrk.method = "POST"
wrk.headers["Host"] = "autodiscover.` + domain + `"
wrk.headers["Content-Type"] = "text/xml"
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>u' .. counter .. '@` + domain + `</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>')
end
`
	pox, err := wrkScript(script, poxLua, up.url(true)+"/autodiscover/autodiscover.xml", 16, 30*time.Second)
	if err != nil {
		return nil, err
	}
	upRSS, err := peakRSS(up.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	rows = append(rows, abuseRow{fmt.Sprintf("30 s of 250 KB upstream answers, a new address each (%d answered)", pox.requests),
		fmt.Sprintf("peak RSS %.0f MB", upRSS), fmt.Sprintf("< %d MB", targetUpstreamRSSMB), upRSS < targetUpstreamRSSMB})
	return rows, nil
}

// millis reads a wrk latency such as 1.25ms, 980.00us or 1.02s.
func millis(s string) float64 {
	var v float64
	var unit string
	fmt.Sscanf(s, "%f%s", &v, &unit)
	switch unit {
	case "us":
		return v / 1000
	case "s":
		return v * 1000
	}
	return v
}

// fakeUpstream serves a valid 250 KB outlook answer with business hosts on
// localhost over TLS, with its certificate (self-signed: its own root) as
// the CA file for serve's SSL_CERT_FILE.
func fakeUpstream(dir string) (url, caFile string, stop func(), err error) {
	caFile, keyFile, err := writeCert(dir, "upstream", false)
	if err != nil {
		return "", "", nil, err
	}
	pair, err := tls.LoadX509KeyPair(caFile, keyFile)
	if err != nil {
		return "", "", nil, err
	}
	answer := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"><User><DisplayName>` +
		strings.Repeat("x", 250<<10) + `</DisplayName></User><Account><AccountType>email</AccountType><Action>settings</Action><Protocol><Type>IMAP</Type><Server>outlook.office365.com</Server><Port>993</Port><SSL>on</SSL></Protocol></Account></Response></Autodiscover>`
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		return "", "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, answer)
	}), ErrorLog: quietLog}
	go srv.Serve(ln)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "https://localhost:" + port + "/autodiscover/autodiscover.xml", caFile, func() { srv.Close() }, nil
}
