package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	yaml "go.yaml.in/yaml/v3"
)

const deployDir = "../../deploy"

// What the image, the package and the unit agree on.
const (
	installedBinary = "/usr/bin/autodiscover-proxy"
	imageUser       = "65532"
	defaultImage    = "localhost/autodiscover-proxy:latest" // deploy/build-image's default tag
)

// parseServe parses serve's arguments with the binary's own flag set.
func parseServe(t *testing.T, where string, args []string) *serveOptions {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("%s: arguments %q do not start with serve", where, args)
	}
	fs, o := serveFlags(io.Discard)
	if err := parseFlags(fs, args[1:]); err != nil {
		t.Fatalf("%s: serve rejects %q", where, args[1:])
	}
	return o
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return p
}

// The production example config loads, uses ACME, and keeps its cache
// in the systemd StateDirectory and the image's volume.
func TestDeployProductionConfig(t *testing.T) {
	cfg, err := config.Load(filepath.Join(deployDir, "config.production.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.ACME == nil || cfg.TLS.ACME.CacheDir != "/var/lib/autodiscover-proxy/acme" || cfg.TLS.ACME.DirectoryURL != config.LetsEncrypt {
		t.Errorf("production config ACME: %+v", cfg.TLS.ACME)
	}
}

type dockerfile struct {
	cmd, entrypoint []string
	expose          []string
	volume, user    string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var d dockerfile
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		word, rest, _ := strings.Cut(sc.Text(), " ")
		switch word {
		case "CMD":
			json.Unmarshal([]byte(rest), &d.cmd)
		case "ENTRYPOINT":
			json.Unmarshal([]byte(rest), &d.entrypoint)
		case "EXPOSE":
			d.expose = strings.Fields(rest)
		case "VOLUME":
			d.volume = rest
		case "USER":
			d.user = rest
		}
	}
	return d
}

func TestDeployDockerfileAndCompose(t *testing.T) {
	d := readDockerfile(t)
	o := parseServe(t, "Dockerfile CMD", d.cmd)
	if len(d.entrypoint) != 1 || d.entrypoint[0] != installedBinary {
		t.Errorf("ENTRYPOINT %q, want %s", d.entrypoint, installedBinary)
	}
	want := []string{port(t, o.https), port(t, o.http), port(t, o.admin)}
	if !slices.Equal(d.expose, want) {
		t.Errorf("EXPOSE %v, but CMD listens on %v", d.expose, want)
	}
	// Kubernetes' runAsNonRoot accepts only a numeric user, not a name.
	if uid, gid, ok := strings.Cut(d.user, ":"); !ok || uid != imageUser || gid != imageUser {
		t.Errorf("USER %q, want %s:%s (numeric, non-root)", d.user, imageUser, imageUser)
	}
	if !strings.HasPrefix("/var/lib/autodiscover-proxy/acme", d.volume) {
		t.Errorf("VOLUME %q does not hold the ACME cache_dir of config.production.yaml", d.volume)
	}

	var compose struct {
		Services map[string]struct {
			Image   string
			Ports   []string
			Volumes []string
		}
	}
	readYAML(t, "docker-compose.yml", &compose)
	svc, ok := compose.Services["autodiscover-proxy"]
	if !ok {
		t.Fatal("docker-compose.yml has no autodiscover-proxy service")
	}
	if script, _ := os.ReadFile(filepath.Join(deployDir, "build-image")); !bytes.Contains(script, []byte("tag=${1:-"+defaultImage+"}")) {
		t.Errorf("deploy/build-image does not tag %s by default", defaultImage)
	}
	if svc.Image != defaultImage {
		t.Errorf("compose runs image %q; deploy/build-image tags %q", svc.Image, defaultImage)
	}
	published := map[string]string{}
	for _, p := range svc.Ports {
		parts := strings.Split(p, ":")
		published[parts[len(parts)-2]] = parts[len(parts)-1]
	}
	if published["443"] != port(t, o.https) || published["80"] != port(t, o.http) || published["9100"] != port(t, o.admin) {
		t.Errorf("compose publishes %v; the image listens on https %s, http %s, admin %s", published, o.https, o.http, o.admin)
	}
	var mountsConfig, mountsCache bool
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		mountsConfig = mountsConfig || parts[1] == o.config
		mountsCache = mountsCache || parts[1] == d.volume
	}
	if !mountsConfig || !mountsCache {
		t.Errorf("compose volumes %v must mount %s and %s", svc.Volumes, o.config, d.volume)
	}
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type k8sPort struct {
	Name          string
	ContainerPort int    `yaml:"containerPort"`
	Port          int    `yaml:"port"`
	TargetPort    string `yaml:"targetPort"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string
		Port string
	} `yaml:"httpGet"`
}

type k8sDoc struct {
	Kind     string
	Metadata struct {
		Name        string
		Labels      map[string]string
		Annotations map[string]string
	}
	Data map[string]string
	Spec struct {
		Replicas     int
		MinAvailable int `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		}
		Template struct {
			Metadata struct{ Labels map[string]string }
			Spec     struct {
				Containers []struct {
					Args           []string
					Ports          []k8sPort
					ReadinessProbe k8sProbe `yaml:"readinessProbe"`
					LivenessProbe  k8sProbe `yaml:"livenessProbe"`
					Resources      struct{ Limits map[string]string }
					VolumeMounts   []struct {
						Name      string
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				}
				Volumes []struct {
					Name      string
					ConfigMap struct{ Name string } `yaml:"configMap"`
				}
			}
		}
		Ports []k8sPort
		TLS   []struct{ Hosts []string }
		Rules []struct {
			Host string
			HTTP struct {
				Paths []struct {
					Backend struct {
						Service struct {
							Name string
							Port struct{ Name string }
						}
					}
				}
			} `yaml:"http"`
		}
	}
}

func TestDeployKubernetes(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", "autodiscover-proxy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]k8sDoc{}
	var serviceSelector map[string]string
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		var d k8sDoc
		if err := n.Decode(&d); err != nil {
			t.Fatal(err)
		}
		if d.Kind == "Service" {
			var s struct {
				Spec struct{ Selector map[string]string }
			}
			n.Decode(&s)
			serviceSelector = s.Spec.Selector
		}
		docs[d.Kind] = d
	}
	for _, k := range []string{"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "Ingress"} {
		if _, ok := docs[k]; !ok {
			t.Fatalf("no %s manifest", k)
		}
	}
	dep, cm, svc, pdb, ing := docs["Deployment"], docs["ConfigMap"], docs["Service"], docs["PodDisruptionBudget"], docs["Ingress"]
	if dep.Spec.Replicas < 2 {
		t.Errorf("replicas %d, want >= 2", dep.Spec.Replicas)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	o := parseServe(t, "Deployment args", c.Args)
	if o.https != "" {
		t.Errorf("-https %q: TLS ends at the ingress, the pod serves plain HTTP", o.https)
	}
	ports := map[string]string{}
	for _, p := range c.Ports {
		ports[p.Name] = itoa(p.ContainerPort)
	}
	if ports["http"] != port(t, o.http) || ports["admin"] != port(t, o.admin) {
		t.Errorf("container ports %v; serve listens on http %s, admin %s", ports, o.http, o.admin)
	}
	if p := c.ReadinessProbe.HTTPGet; p.Path != "/readyz" || p.Port != "admin" {
		t.Errorf("readiness probe %+v", p)
	}
	if p := c.LivenessProbe.HTTPGet; p.Path != "/healthz" || p.Port != "admin" {
		t.Errorf("liveness probe %+v", p)
	}
	if c.Resources.Limits["cpu"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resource limits %v", c.Resources.Limits)
	}
	if len(c.VolumeMounts) == 0 || c.VolumeMounts[0].MountPath != filepath.Dir(o.config) {
		t.Errorf("config mount %+v, serve reads %s", c.VolumeMounts, o.config)
	}
	if v := dep.Spec.Template.Spec.Volumes; len(v) == 0 || v[0].ConfigMap.Name != cm.Metadata.Name {
		t.Errorf("volume %+v does not use ConfigMap %s", v, cm.Metadata.Name)
	}
	cfgText, ok := cm.Data[filepath.Base(o.config)]
	if !ok {
		t.Fatalf("ConfigMap has no key %s", filepath.Base(o.config))
	}
	cfg, err := config.Parse([]byte(cfgText), "ConfigMap", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TrustedProxies) == 0 {
		t.Error("the ConfigMap's config trusts no proxy: X-Forwarded-Proto from the ingress would be ignored")
	}
	labels := dep.Spec.Template.Metadata.Labels
	for what, sel := range map[string]map[string]string{"Deployment": dep.Spec.Selector.MatchLabels, "Service": serviceSelector, "PodDisruptionBudget": pdb.Spec.Selector.MatchLabels} {
		if len(sel) == 0 {
			t.Errorf("%s has an empty selector", what)
		}
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s selector %v does not match pod labels %v", what, sel, labels)
			}
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != "http" {
		t.Errorf("Service ports %+v", svc.Spec.Ports)
	}
	if pdb.Spec.MinAvailable < 1 || pdb.Spec.MinAvailable >= dep.Spec.Replicas {
		t.Errorf("PDB minAvailable %d with %d replicas", pdb.Spec.MinAvailable, dep.Spec.Replicas)
	}
	if ing.Metadata.Annotations["cert-manager.io/cluster-issuer"] == "" {
		t.Error("Ingress has no cert-manager issuer")
	}
	var ruleHosts []string
	for _, r := range ing.Spec.Rules {
		ruleHosts = append(ruleHosts, r.Host)
		for _, p := range r.HTTP.Paths {
			if b := p.Backend.Service; b.Name != svc.Metadata.Name || b.Port.Name != svc.Spec.Ports[0].Name {
				t.Errorf("rule %s sends to %+v", r.Host, b)
			}
		}
	}
	want := cfg.CertificateHosts()
	slices.Sort(want)
	slices.Sort(ruleHosts)
	tlsHosts := slices.Clone(ing.Spec.TLS[0].Hosts)
	slices.Sort(tlsHosts)
	if !slices.Equal(ruleHosts, want) || !slices.Equal(tlsHosts, want) {
		t.Errorf("Ingress rules %v and TLS %v; the config serves %v", ruleHosts, tlsHosts, want)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func readUnit(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "autodiscover-proxy.service"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	return keys
}

func TestDeploySystemdUnit(t *testing.T) {
	u := readUnit(t)
	execStart := strings.Fields(u["ExecStart"][0])
	if execStart[0] != "/usr/local/bin/autodiscover-proxy" {
		t.Errorf("ExecStart binary %s", execStart[0])
	}
	o := parseServe(t, "ExecStart", execStart[1:])
	if filepath.Dir(o.config) != "/etc/"+u["ConfigurationDirectory"][0] {
		t.Errorf("-config %s is not in ConfigurationDirectory %s", o.config, u["ConfigurationDirectory"])
	}
	if !strings.HasPrefix("/var/lib/autodiscover-proxy/acme", "/var/lib/"+u["StateDirectory"][0]) {
		t.Errorf("StateDirectory %s does not hold the ACME cache_dir", u["StateDirectory"])
	}
	for k, want := range map[string]string{
		"DynamicUser": "yes", "AmbientCapabilities": "CAP_NET_BIND_SERVICE", "ProtectSystem": "strict",
		"NoNewPrivileges": "yes", "ExecReload": "/bin/kill -HUP $MAINPID",
	} {
		if !slices.Contains(u[k], want) {
			t.Errorf("%s=%v, want %s", k, u[k], want)
		}
	}
	if port(t, o.https) != "443" || port(t, o.http) != "80" {
		t.Errorf("unit listens on %s and %s; it exists to bind 443 and 80", o.https, o.http)
	}
}

// systemd-analyze verify (Debian's systemd) on the unit, with ExecStart
// pointing at a freshly built binary: any diagnostic fails the test.
func TestDeploySystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze not installed: .ci/run installs Debian's systemd")
		}
		t.Skip("systemd-analyze not installed (apt-get install systemd)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "autodiscover-proxy")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	verify := func(unit string) (string, error) {
		out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	// The check can fail: a unit with an unknown key is reported.
	bad := filepath.Join(dir, "bad.service")
	os.WriteFile(bad, []byte("[Service]\nExecStart="+bin+"\nNoSuchKey=1\n"), 0o644)
	if out, _ := verify(bad); !strings.Contains(out, "NoSuchKey") {
		t.Fatalf("systemd-analyze does not report an unknown key (%q): the check below would prove nothing", out)
	}
	data, _ := os.ReadFile(filepath.Join(deployDir, "autodiscover-proxy.service"))
	unit := filepath.Join(dir, "autodiscover-proxy.service")
	os.WriteFile(unit, bytes.ReplaceAll(data, []byte("/usr/local/bin/autodiscover-proxy"), []byte(bin)), 0o644)
	if out, err := verify(unit); err != nil || out != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
