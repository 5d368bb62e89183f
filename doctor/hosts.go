package doctor

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

// DefaultHostsFile is the hosts file of this system.
func DefaultHostsFile() string {
	if runtime.GOOS == "windows" {
		return `C:\Windows\System32\drivers\etc\hosts`
	}
	return "/etc/hosts"
}

// pinnable is every name a hosts file must not pin: Microsoft's endpoints,
// the consumer hosts, the configured domains' servers and our own names.
func pinnable(domains []*config.Domain) map[string]string {
	m := map[string]string{}
	for _, p := range config.Presets() {
		for _, h := range p.PinnedHosts {
			m[h] = "a " + p.DisplayName + " endpoint"
		}
	}
	for _, h := range config.ConsumerHosts() {
		m[h] = "a consumer Outlook.com endpoint"
	}
	for _, d := range domains {
		for _, s := range []*config.Server{d.IMAP, d.POP3, d.SMTP} {
			if s != nil {
				m[s.Host] = "a mail server of " + d.Name
			}
		}
		for _, n := range d.Names() {
			m["autodiscover."+n] = "this service's name for " + n
			m["autoconfig."+n] = "this service's name for " + n
		}
	}
	return m
}

// CheckHosts flags hosts-file entries that pin any of those names to a
// fixed address: the stale hard-coded settings Microsoft's retirement
// notice warns about. given says the operator named the file: then a
// missing one is a finding, not "no hosts file".
func CheckHosts(path string, given bool, domains []*config.Domain) []Finding {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if given {
			return []Finding{{Warn, "hosts", path, "no such file: the hosts file was not checked",
				"give the path of the hosts file to check with -hosts, or leave -hosts out to check " + DefaultHostsFile()}}
		}
		return []Finding{{Pass, "hosts", path, "no hosts file", ""}}
	}
	if err != nil {
		return []Finding{{Warn, "hosts", path, err.Error(), "run doctor with permission to read " + path}}
	}
	defer f.Close()
	names := pinnable(domains)
	var out []Finding
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) < 2 {
			continue
		}
		for _, name := range fields[1:] {
			n := strings.ToLower(strings.TrimSuffix(name, "."))
			if why, ok := names[n]; ok {
				out = append(out, Finding{Fail, "hosts", fmt.Sprintf("%s:%d", path, line),
					fmt.Sprintf("pins %s (%s) to %s: DNS is not asked, and clients break when the server moves", n, why, fields[0]),
					fmt.Sprintf("delete line %d; on Windows, reset the hosts file to its default (Microsoft KB 972034)", line)})
			}
		}
	}
	if err := sc.Err(); err != nil {
		out = append(out, Finding{Warn, "hosts", path, err.Error(), ""})
	}
	if len(out) == 0 {
		out = append(out, Finding{Pass, "hosts", path, "pins no mail or autodiscover name", ""})
	}
	return out
}
