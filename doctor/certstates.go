package doctor

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// CheckCertificateStates reads each host's certificate state from a
// running service's admin listener (/certificates) and reports it:
// issued and issuing pass, waiting_dns is a warning (the name is not
// pointed at the service yet, and is not ordered until it is), failing
// fails with the CA's reason.
func CheckCertificateStates(ctx context.Context, admin string) []Finding {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/certificates", nil)
	if err != nil {
		return []Finding{{Fail, "certificates", admin, err.Error(), "give -admin HOST:PORT, the service's admin listener"}}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return []Finding{{Fail, "certificates", admin, err.Error(), "give -admin the service's admin listener (serve -admin, default 127.0.0.1:9612)"}}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return []Finding{{Fail, "certificates", admin, "HTTP " + resp.Status, "give -admin the service's admin listener"}}
	}
	var out []Finding
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 5 {
			continue
		}
		host, state, since, retry, problem := f[0], f[1], f[2], f[3], f[4]
		switch state {
		case "issued":
			out = append(out, Finding{Pass, "certificates", host, "issued", ""})
		case "issuing":
			out = append(out, Finding{Pass, "certificates", host, "being issued since " + since, ""})
		case "waiting_dns":
			out = append(out, Finding{Warn, "certificates", host, fmt.Sprintf("not ordered: %s; tried again at %s", problem, retry),
				"point " + host + " at this service (autodiscover-proxy dns prints the record)"})
		default:
			out = append(out, Finding{Fail, "certificates", host, fmt.Sprintf("%s since %s: %s; tried again at %s", state, since, problem, retry),
				"check that ports 80 and 443 of " + host + " reach this service, and the CA's message"})
		}
	}
	if len(out) == 0 {
		out = append(out, Finding{Pass, "certificates", admin, "no certificate ordered here (files, or a development certificate)", ""})
	}
	return out
}
