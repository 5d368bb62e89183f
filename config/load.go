package config

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
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
		if c, ok := parseChunked(data, name, dir, chunkItems); ok {
			return c, nil
		}
	}
	// One pass of the YAML library: a node tree (which keeps line numbers),
	// decoded from there; unknown keys are found by walking the tree.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 || root.Content[0].Kind == yaml.ScalarNode && root.Content[0].Value == "" {
		return nil, fmt.Errorf("%s: empty config: it needs at least one entry under domains:", name)
	}
	v := validator{file: name, root: &root}
	v.knownKeys(root.Content[0], reflect.TypeOf(file{}), "")
	if len(v.problems) > 0 {
		return nil, &Error{Problems: v.problems}
	}
	var f file
	if err := root.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, yamlError(err))
	}
	c := v.config(&f, dir)
	if len(v.problems) > 0 {
		return nil, &Error{Problems: v.problems}
	}
	return c, nil
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
				v.problems = append(v.problems, Problem{File: v.file, Line: k.Line, Path: p,
					Msg: "unknown key; the keys here are " + strings.Join(ks.names, ", ")})
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

// yamlError turns the YAML library's multi-line type error into one line
// per problem, keeping its line numbers.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return err
}

// The file's shape. Key names are a contract with users' configs.
type file struct {
	TLS            fileTLS      `yaml:"tls"`
	Log            fileLog      `yaml:"log"`
	TrustedProxies []string     `yaml:"trusted_proxies"`
	Limits         fileLimits   `yaml:"limits"`
	Domains        []fileDomain `yaml:"domains"`
}

type fileLimits struct {
	UpstreamCacheMB        *int `yaml:"upstream_cache_mb"`
	RelayPerClientPerHour  *int `yaml:"relay_per_client_per_hour"`
	RelayPerAccountPerHour *int `yaml:"relay_per_account_per_hour"`
	PagesPerClientPerMin   *int `yaml:"pages_per_client_per_minute"`
	ConnectionsPerListener *int `yaml:"connections_per_listener"`
}

type fileTLS struct {
	CertFile   string    `yaml:"cert_file"`
	KeyFile    string    `yaml:"key_file"`
	MinVersion string    `yaml:"min_version"`
	ACME       *fileACME `yaml:"acme"`
}

type fileACME struct {
	Email        string `yaml:"email"`
	CacheDir     string `yaml:"cache_dir"`
	DirectoryURL string `yaml:"directory_url"`
}

type fileLog struct {
	Addresses string `yaml:"addresses"`
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
