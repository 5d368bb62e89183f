package autodiscover

import (
	"net/url"
	"strings"
)

// queryParam returns the value of a query parameter as url.ParseQuery
// decodes it, without building the map: the first non-empty value of a
// parameter named exactly key, else of one whose name matches key
// case-insensitively. Pairs ParseQuery would drop (bad escapes, ";") are
// skipped.
func queryParam(rawQuery, key string) string {
	if v := scanQuery(rawQuery, key, false); v != "" {
		return v
	}
	return scanQuery(rawQuery, key, true)
}

func scanQuery(q, key string, fold bool) string {
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(k)
		if err != nil || !(k == key || fold && strings.EqualFold(k, key)) {
			continue
		}
		if v, err = url.QueryUnescape(v); err == nil && v != "" {
			return v
		}
	}
	return ""
}
