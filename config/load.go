package config

import (
	"cmp"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultYAML []byte

// Default returns the embedded config: example.com on the microsoft365
// preset, so the binary answers something without any file.
func Default() *Config {
	c, err := Parse(defaultYAML, "embedded default", "")
	if err != nil {
		panic("embedded default config: " + err.Error())
	}
	return c
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, filepath.Dir(path))
}

// maxConfigSize bounds what Parse accepts; 100,000 domains fit easily.
const maxConfigSize = 64 << 20

// Parse validates a config document. name is used in messages; dir is the
// directory relative file names are resolved against.
func Parse(data []byte, name, dir string) (*Config, error) {
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxConfigSize)
	}
	if len(data) > chunkedAbove {
		if c, v, ok := parseChunked(data, name, dir, chunkItems); ok {
			return finish(c, v, data, dir)
		}
	}
	// One pass of the YAML library: a node tree (which keeps line numbers),
	// decoded from there; unknown keys are found by walking the tree.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{Problems: []Problem{syntaxProblem(data, name, err)}}
	}
	if root.Kind == 0 || len(root.Content) == 0 || root.Content[0].Kind == yaml.ScalarNode && root.Content[0].Value == "" {
		return nil, fmt.Errorf("%s: empty config: it needs at least one entry under domains:", name)
	}
	if doc := root.Content[0]; doc.Kind != yaml.MappingNode {
		what := map[yaml.Kind]string{yaml.SequenceNode: "a list", yaml.ScalarNode: "a single value", yaml.AliasNode: "an alias"}[doc.Kind]
		return nil, &Error{Problems: []Problem{{File: name, Line: doc.Line, Msg: "the file is " + what +
			"; it must be a mapping of keys, with the domains as a list under domains: (domains:, then   - name: contoso.com and   provider: microsoft365 below it)"}}}
	}
	// Every problem at once: unknown and duplicate keys, values of the
	// wrong type, then everything validation finds in what could be read.
	v := validator{file: name, root: &root}
	v.knownKeys(root.Content[0], reflect.TypeOf(file{}), "")
	v.dropDuplicates(root.Content[0], "")
	var f file
	if err := root.Decode(&f); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, e := range te.Errors {
			v.typeProblem(e)
		}
	}
	c := v.config(&f, dir)
	return finish(c, &v, data, dir)
}

// finish reads the files the main config includes into c, checks that
// some domain is configured, and reports every problem, the main file's
// and the included files', in the files' order.
func finish(c *Config, v *validator, data []byte, dir string) (*Config, error) {
	sum := sha256.New()
	fmt.Fprintf(sum, "%s\x00%d\x00", v.file, len(data))
	sum.Write(data)
	c.Sources = []string{v.file}
	v.includes(c, dir, sum)
	files := c.Sources
	if len(c.Domains) == 0 {
		// Of the configuration as a whole (no line): listed after its
		// causes, such as a misspelt domains: key or a domains: that is
		// not a list.
		v.problems = append(v.problems, Problem{File: v.file, Path: "domains", Msg: "no domains configured: add at least one entry with name and provider"})
	}
	if len(v.problems) > 0 {
		// In the files' order and each file's; a problem of the whole,
		// which has no line, is a consequence of those above it, so it
		// comes last.
		order := func(p Problem) (int, int) {
			line := p.Line
			if line == 0 {
				line = math.MaxInt
			}
			return slices.Index(files, p.File), line
		}
		slices.SortStableFunc(v.problems, func(a, b Problem) int {
			fa, la := order(a)
			fb, lb := order(b)
			if fa != fb {
				return cmp.Compare(fa, fb)
			}
			return cmp.Compare(la, lb)
		})
		return nil, &Error{Problems: v.problems}
	}
	c.Hash = hex.EncodeToString(sum.Sum(nil))[:16]
	return c, nil
}

// nearest is the name within two edits of key (a typo: tsl for tls), or
// "" when none is.
func nearest(key string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(key), n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance counts the single-letter insertions, deletions,
// substitutions and swaps of neighbours that turn a into b.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// yamlLine is the "yaml: line N: " prefix of the YAML library's messages.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// syntaxProblem places a YAML syntax error on its line. The library names
// the line where the enclosing block began (line 1 for an indentation slip
// on line 4), so the line is found again: the first line from which no
// longer prefix of the file parses.
func syntaxProblem(data []byte, name string, err error) Problem {
	msg := yamlLine.ReplaceAllString(err.Error(), "")
	lines := strings.SplitAfter(string(data), "\n")
	parses := func(n int) bool {
		var node yaml.Node
		return yaml.Unmarshal([]byte(strings.Join(lines[:n], "")), &node) == nil
	}
	lo, hi := 0, len(lines) // prefix lo parses, prefix hi does not
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; parses(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	if strings.Contains(msg, "did not find expected") || strings.Contains(msg, "mapping values are not allowed") {
		msg += ": check this line's indentation against the lines above it (spaces only, the same depth for keys of one entry)"
	}
	return Problem{File: name, Line: hi, Msg: "YAML syntax: " + msg}
}

// dropDuplicates reports a key given twice in one mapping, and keeps the
// first, so that the rest of the file can still be read.
func (v *validator) dropDuplicates(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		first := map[string]int{}
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := k.Value
			if path != "" {
				p = path + "." + p
			}
			if line, dup := first[k.Value]; dup {
				v.problems = append(v.problems, Problem{File: v.file, Line: k.Line, Path: p,
					Msg: fmt.Sprintf("given twice (first on line %d): keep one; only the first is read", line)})
				continue
			}
			first[k.Value] = k.Line
			v.dropDuplicates(n.Content[i+1], p)
			kept = append(kept, k, n.Content[i+1])
		}
		n.Content = kept
	case yaml.SequenceNode:
		for i, c := range n.Content {
			v.dropDuplicates(c, path+"["+strconv.Itoa(i)+"]")
		}
	}
}

// yamlTypeError is one of the library's type errors:
// line 4: cannot unmarshal !!str `abc` into int.
var yamlTypeError = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+) (?:`(.*)` )?into (.+)$")

// typeProblem turns a type error into a problem at its line and path, in
// words.
func (v *validator) typeProblem(e string) {
	m := yamlTypeError.FindStringSubmatch(e)
	if m == nil {
		v.problems = append(v.problems, Problem{File: v.file, Msg: e})
		return
	}
	line, _ := strconv.Atoi(m[1])
	want := map[string]string{"int": "a whole number", "bool": "true or false", "string": "a single value (text)"}[m[4]]
	if want == "" {
		switch {
		case strings.HasPrefix(m[4], "[]"):
			want = "a list"
		default:
			want = "a mapping of keys"
		}
	}
	got := map[string]string{"seq": "a list", "map": "a mapping"}[m[2]]
	if got == "" {
		got = strconv.Quote(m[3])
	}
	kind := map[string]yaml.Kind{"seq": yaml.SequenceNode, "map": yaml.MappingNode}[m[2]]
	if kind == 0 {
		kind = yaml.ScalarNode
	}
	// The deepest value that fits: a list starts on the line of its first
	// item, and the item is meant. The library shortens a long value in
	// its message ("contoso..."): its start is matched, and the whole value
	// quoted.
	path, value := "", m[3]
	short, shortened := strings.CutSuffix(m[3], "...")
	walkValues(v.root.Content[0], "", func(p string, _, n *yaml.Node) {
		same := kind != yaml.ScalarNode || n.Value == m[3] || shortened && strings.HasPrefix(n.Value, short)
		if n.Line == line && n.Kind == kind && same && len(p) > len(path) {
			path, value = p, n.Value
		}
	})
	if kind == yaml.ScalarNode {
		got = strconv.Quote(value)
	}
	v.problems = append(v.problems, Problem{File: v.file, Line: line, Path: path, Msg: got + " is not " + want + " here"})
}

// yamlKeys are a struct's yaml keys, in field order, and their types.
type yamlKeys struct {
	names []string
	types map[string]reflect.Type
}

var yamlKeysCache sync.Map // reflect.Type -> *yamlKeys

func yamlKeysOf(t reflect.Type) *yamlKeys {
	if ks, ok := yamlKeysCache.Load(t); ok {
		return ks.(*yamlKeys)
	}
	ks := &yamlKeys{types: map[string]reflect.Type{}}
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			ks.types[tag] = t.Field(i).Type
			ks.names = append(ks.names, tag)
		}
	}
	yamlKeysCache.Store(t, ks)
	return ks
}

// knownKeys reports every mapping key that names no field of t (by its
// yaml tag), with its line: a misspelt key must not be ignored silently.
func (v *validator) knownKeys(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		ks := yamlKeysOf(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := k.Value
			if path != "" {
				p = path + "." + p
			}
			ft, ok := ks.types[k.Value]
			if !ok {
				msg := "unknown key; the keys here are " + strings.Join(ks.names, ", ")
				if near := nearest(k.Value, ks.names); near != "" {
					msg = "unknown key: did you mean " + near + "? The keys here are " + strings.Join(ks.names, ", ")
				}
				v.problems = append(v.problems, Problem{File: v.file, Line: k.Line, Path: p, Msg: msg})
				continue
			}
			v.knownKeys(n.Content[i+1], ft, p)
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, c := range n.Content {
			v.knownKeys(c, t.Elem(), path+"["+strconv.Itoa(i)+"]")
		}
	}
}

// The file's shape. Key names are a contract with users' configs.
type file struct {
	TLS            fileTLS      `yaml:"tls"`
	Log            fileLog      `yaml:"log"`
	TrustedProxies []string     `yaml:"trusted_proxies"`
	Limits         fileLimits   `yaml:"limits"`
	Include        []string     `yaml:"include"`
	Domains        []fileDomain `yaml:"domains"`
}

type fileLimits struct {
	UpstreamCacheMB        *int `yaml:"upstream_cache_mb"`
	RelayPerClientPerHour  *int `yaml:"relay_per_client_per_hour"`
	RelayPerAccountPerHour *int `yaml:"relay_per_account_per_hour"`
	PagesPerClientPerMin   *int `yaml:"pages_per_client_per_minute"`
	ConnectionsPerListener *int `yaml:"connections_per_listener"`
	AnswerMemoryMB         *int `yaml:"answer_memory_mb"`
	RelayPerMinute         *int `yaml:"relay_per_minute"`
	ClientIPv6Prefix       *int `yaml:"client_ipv6_prefix"`
}

type fileTLS struct {
	CertFile   string    `yaml:"cert_file"`
	KeyFile    string    `yaml:"key_file"`
	MinVersion string    `yaml:"min_version"`
	ACME       *fileACME `yaml:"acme"`
}

type fileACME struct {
	Email        string `yaml:"email"`
	Store        string `yaml:"store"`
	CacheDir     string `yaml:"cache_dir"`
	DirectoryURL string `yaml:"directory_url"`
}

type fileLog struct {
	Addresses      string `yaml:"addresses"`
	AddressKeyFile string `yaml:"address_key_file"`
}

type fileDomain struct {
	Name            string        `yaml:"name"`
	Aliases         []string      `yaml:"aliases"`
	Provider        string        `yaml:"provider"`
	DisplayName     string        `yaml:"display_name"`
	IMAP            *fileServer   `yaml:"imap"`
	POP3            *fileServer   `yaml:"pop3"`
	SMTP            *fileServer   `yaml:"smtp"`
	ActiveSync      *fileURL      `yaml:"activesync"`
	EWS             *fileURL      `yaml:"ews"`
	OAB             *fileURL      `yaml:"oab"`
	ExchangeHost    string        `yaml:"exchange_host"`
	SMTPPassword    string        `yaml:"smtp_password"`
	EWSAccess       string        `yaml:"ews_access"`
	LoginName       string        `yaml:"login_name"`
	OutlookExchange string        `yaml:"outlook_exchange"`
	ACMEApex        bool          `yaml:"acme_apex"`
	Upstream        *fileUpstream `yaml:"upstream"`
}

type fileUpstream struct {
	URL           string   `yaml:"url"`
	Timeout       string   `yaml:"timeout"`
	RelayAuth     bool     `yaml:"relay_auth"`
	RedirectHosts []string `yaml:"redirect_hosts"`
}

type fileServer struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	TLS  string `yaml:"tls"`
}

type fileURL struct {
	URL string `yaml:"url"`
}

// fragment is an included file's shape: a list of domains, nothing else.
type fragment struct {
	Domains []fileDomain `yaml:"domains"`
}

// maxIncludedFiles bounds what include: patterns may match.
const maxIncludedFiles = 100000

// includes reads every file c's include: patterns match, in order (each
// pattern's matches sorted), and adds their domains to c: each file a
// list under domains:, checked as the main file's are, and no name in two
// places. Its problems go to v, under each file's own name.
func (v *validator) includes(c *Config, dir string, sum io.Writer) {
	for i, pattern := range c.include {
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(dir, pattern)
		}
		c.IncludeDirs = append(c.IncludeDirs, filepath.Dir(pattern))
		matches, err := filepath.Glob(pattern)
		if err != nil {
			v.addf(fmt.Sprintf("include[%d]", i), "%q is not a file pattern: %v", c.include[i], err)
			continue
		}
		slices.Sort(matches)
		for _, m := range matches {
			if slices.Contains(c.Sources, m) {
				continue // matched by an earlier pattern
			}
			if len(c.Sources) > maxIncludedFiles {
				v.addf(fmt.Sprintf("include[%d]", i), "more than %d files: split the domains into fewer files", maxIncludedFiles)
				return
			}
			data, err := os.ReadFile(m)
			if err != nil {
				v.addf(fmt.Sprintf("include[%d]", i), "%v", err)
				continue
			}
			c.Sources = append(c.Sources, m)
			fmt.Fprintf(sum, "%s\x00%d\x00", m, len(data))
			sum.Write(data)
			fv := validator{file: m}
			var f fragment
			if fv.parseFragment(data, &f) {
				fv.addDomains(c, f.Domains)
			}
			v.problems = append(v.problems, fv.problems...)
		}
	}
}

// parseFragment reads an included file into f; false when it could not be
// read at all (the problems say why).
func (v *validator) parseFragment(data []byte, f *fragment) bool {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		v.problems = append(v.problems, syntaxProblem(data, v.file, err))
		return false
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		v.problems = append(v.problems, Problem{File: v.file, Line: 1, Msg: "an included file holds a list of domains under domains: (domains:, then   - name: contoso.com and   provider: microsoft365 below it)"})
		return false
	}
	v.root = &root
	v.knownKeys(root.Content[0], reflect.TypeOf(fragment{}), "")
	v.dropDuplicates(root.Content[0], "")
	if err := root.Decode(f); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			v.problems = append(v.problems, Problem{File: v.file, Msg: err.Error()})
			return false
		}
		for _, e := range te.Errors {
			v.typeProblem(e)
		}
	}
	return true
}
