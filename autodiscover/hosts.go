package autodiscover

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// hostName is a Host header's name: no port, lower case, no final dot.
func hostName(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		hostport = h
	}
	return strings.ToLower(strings.TrimSuffix(hostport, "."))
}

// httpsURL is https://host[:port]path for one of our own host names.
func (s *Server) httpsURL(host, path string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if s.HTTPSPort != 443 && s.HTTPSPort != 0 {
		host = net.JoinHostPort(host, strconv.Itoa(s.HTTPSPort))
	}
	return "https://" + host + path
}

// urlHost is the lower-case host name of a URL, or "".
func urlHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}
