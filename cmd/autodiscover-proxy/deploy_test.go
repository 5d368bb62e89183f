package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	yaml "go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"
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

// adminPort is serve's default admin port, which every deploy file uses:
// not node_exporter's 9100, taken on most hosts Prometheus monitors.
func adminPort(t *testing.T) string {
	_, o := serveFlags(io.Discard)
	p := port(t, o.admin)
	if p == "9100" {
		t.Fatal("the default admin port is node_exporter's 9100")
	}
	return p
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
	if published["443"] != port(t, o.https) || published["80"] != port(t, o.http) || published[adminPort(t)] != port(t, o.admin) {
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

// k8sObjects decodes every document of a manifest strictly into the
// k8s.io/api types: an unknown or misspelt field fails, as kubectl's
// server-side validation would refuse it.
func k8sObjects(t *testing.T, name string) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string][]byte{}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		var meta metav1.TypeMeta
		if err := sigsyaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if meta.Kind == "" {
			continue
		}
		docs[meta.Kind] = []byte(doc)
	}
	return docs
}

func strictly(t *testing.T, kind string, doc []byte, v any) {
	t.Helper()
	if err := sigsyaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("%s does not decode strictly into its k8s.io/api type: %v", kind, err)
	}
}

func TestDeployKubernetes(t *testing.T) {
	docs := k8sObjects(t, "kubernetes/autodiscover-proxy.yaml")
	var (
		cm  corev1.ConfigMap
		dep appsv1.Deployment
		svc corev1.Service
		pdb policyv1.PodDisruptionBudget
		ing networkingv1.Ingress
	)
	for kind, v := range map[string]any{"ConfigMap": &cm, "Deployment": &dep, "Service": &svc, "PodDisruptionBudget": &pdb, "Ingress": &ing} {
		doc, ok := docs[kind]
		if !ok {
			t.Fatalf("no %s manifest", kind)
		}
		strictly(t, kind, doc, v)
	}
	// The check can fail: a misspelt field is refused.
	var probe appsv1.Deployment
	if sigsyaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 2\n"), &probe) == nil {
		t.Fatal("strict decoding accepts an unknown field: the check above would prove nothing")
	}

	if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
		t.Errorf("replicas %v, want >= 2", dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	o := parseServe(t, "Deployment args", c.Args)
	if o.https != "" {
		t.Errorf("-https %q: TLS ends at the ingress, the pod serves plain HTTP", o.https)
	}

	// The image: pushable reference, numeric non-root user as in the Dockerfile.
	if ref := c.Image; !regexp.MustCompile(`^[a-z0-9.-]+\.[a-z]+(:\d+)?/[a-z0-9./-]+:[\w.-]+$`).MatchString(ref) {
		t.Errorf("image %q: want registry/name:tag, a reference one can build and push", ref)
	} else if readme, _ := os.ReadFile("../../README.md"); !bytes.Contains(readme, []byte("deploy/build-image "+ref)) || !bytes.Contains(readme, []byte("push "+ref)) {
		t.Errorf("README does not show how to build and push %s", ref)
	}
	d := readDockerfile(t)
	sc := pod.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || sc.RunAsGroup == nil ||
		d.user != strconv.FormatInt(*sc.RunAsUser, 10)+":"+strconv.FormatInt(*sc.RunAsGroup, 10) {
		t.Errorf("pod securityContext %+v; the image runs as %s, and runAsNonRoot needs a numeric runAsUser", sc, d.user)
	}
	if csc := c.SecurityContext; csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
		csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext %+v: want a read-only root filesystem and no privilege escalation", csc)
	}

	// Memory: a limit above the measured peak, and GOMEMLIMIT from a resource field below it.
	limit, request := c.Resources.Limits.Memory(), c.Resources.Requests.Memory()
	if limit.Value() < 2*64<<20 || c.Resources.Limits.Cpu().IsZero() {
		t.Errorf("limits %v: memory must be well above the measured 64 MB peak", c.Resources.Limits)
	}
	var memlimit *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == "GOMEMLIMIT" {
			memlimit = &c.Env[i]
		}
	}
	if memlimit == nil || memlimit.ValueFrom == nil || memlimit.ValueFrom.ResourceFieldRef == nil {
		t.Errorf("no GOMEMLIMIT from a resourceFieldRef: %+v", c.Env)
	} else if ref := memlimit.ValueFrom.ResourceFieldRef; ref.Resource != "requests.memory" || request.Cmp(*limit) >= 0 || !ref.Divisor.IsZero() && ref.Divisor.Value() != 1 {
		t.Errorf("GOMEMLIMIT from %+v with request %v and limit %v: want bytes of a request below the limit (headroom for what is not heap)", ref, request, limit)
	}

	ports := map[string]string{}
	for _, p := range c.Ports {
		ports[p.Name] = strconv.Itoa(int(p.ContainerPort))
	}
	if ports["http"] != port(t, o.http) || ports["admin"] != port(t, o.admin) || ports["admin"] != adminPort(t) {
		t.Errorf("container ports %v; serve listens on http %s, admin %s", ports, o.http, o.admin)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" || p.HTTPGet.Port.String() != "admin" {
		t.Errorf("readiness probe %+v", p)
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "admin" {
		t.Errorf("liveness probe %+v", p)
	}

	// Volumes: the config from the ConfigMap, the ingress's TLS secret where the config reads it.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	volumes := map[string]corev1.VolumeSource{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v.VolumeSource
	}
	if v := volumes["config"]; v.ConfigMap == nil || v.ConfigMap.Name != cm.Name || mounts["config"] != filepath.Dir(o.config) {
		t.Errorf("config volume %+v at %s; serve reads %s from ConfigMap %s", v, mounts["config"], o.config, cm.Name)
	}
	cfgText, ok := cm.Data[filepath.Base(o.config)]
	if !ok {
		t.Fatalf("ConfigMap has no key %s", filepath.Base(o.config))
	}
	cfg, err := config.Parse([]byte(cfgText), "ConfigMap", filepath.Dir(o.config))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TrustedProxies) == 0 {
		t.Error("the ConfigMap's config trusts no proxy: X-Forwarded-Proto from the ingress would be ignored")
	}
	if len(ing.Spec.TLS) != 1 {
		t.Fatalf("Ingress TLS %+v", ing.Spec.TLS)
	}
	secret := volumes["tls"]
	if secret.Secret == nil || secret.Secret.SecretName != ing.Spec.TLS[0].SecretName ||
		cfg.TLS.CertFile != filepath.Join(mounts["tls"], "tls.crt") || cfg.TLS.KeyFile != filepath.Join(mounts["tls"], "tls.key") {
		t.Errorf("the ingress's certificate (secret %s) is not mounted where tls.cert_file/key_file (%s, %s) read it: volume %+v at %s; without it profiles go unsigned",
			ing.Spec.TLS[0].SecretName, cfg.TLS.CertFile, cfg.TLS.KeyFile, secret, mounts["tls"])
	}
	// The pod only signs with it: it starts before cert-manager has issued
	// it (profiles unsigned until then), so the secret is optional.
	if secret.Secret == nil || secret.Secret.Optional == nil || !*secret.Secret.Optional {
		t.Errorf("the TLS secret is not optional: pods cannot start before cert-manager has issued it, though they only sign profiles with it")
	}

	labels := dep.Spec.Template.Labels
	for what, sel := range map[string]map[string]string{"Deployment": dep.Spec.Selector.MatchLabels, "Service": svc.Spec.Selector, "PodDisruptionBudget": pdb.Spec.Selector.MatchLabels} {
		if len(sel) == 0 {
			t.Errorf("%s has an empty selector", what)
		}
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s selector %v does not match pod labels %v", what, sel, labels)
			}
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service ports %+v", svc.Spec.Ports)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || pdb.Spec.MinAvailable.IntValue() >= int(*dep.Spec.Replicas) {
		t.Errorf("PDB minAvailable %v with %d replicas", pdb.Spec.MinAvailable, *dep.Spec.Replicas)
	}
	if ing.Annotations["cert-manager.io/cluster-issuer"] == "" {
		t.Error("Ingress has no cert-manager issuer")
	}
	var ruleHosts []string
	for _, r := range ing.Spec.Rules {
		ruleHosts = append(ruleHosts, r.Host)
		for _, p := range r.HTTP.Paths {
			if b := p.Backend.Service; b == nil || b.Name != svc.Name || b.Port.Name != svc.Spec.Ports[0].Name {
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
	if execStart[0] != installedBinary {
		t.Errorf("ExecStart binary %s, want %s (where the package installs it)", execStart[0], installedBinary)
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
	if port(t, o.https) != "443" || port(t, o.http) != "80" || port(t, o.admin) != adminPort(t) {
		t.Errorf("unit listens on %s, %s and admin %s; it exists to bind 443 and 80, and admin on the default %s", o.https, o.http, o.admin, adminPort(t))
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
	os.WriteFile(unit, bytes.ReplaceAll(data, []byte(installedBinary), []byte(bin)), 0o644)
	if out, err := verify(unit); err != nil || out != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The fleet manifest: 3 replicas that answer TLS themselves behind a
// LoadBalancer on 443 and 80 (no ingress), the store's PG* variables from a
// Secret, the ConfigMap mounted as a directory so that its changes reach
// the replicas, a PodDisruptionBudget that keeps two.
func TestDeployKubernetesFleet(t *testing.T) {
	docs := k8sObjects(t, "kubernetes/fleet.yaml")
	var (
		cm  corev1.ConfigMap
		dep appsv1.Deployment
		svc corev1.Service
		pdb policyv1.PodDisruptionBudget
	)
	for kind, v := range map[string]any{"ConfigMap": &cm, "Deployment": &dep, "Service": &svc, "PodDisruptionBudget": &pdb} {
		doc, ok := docs[kind]
		if !ok {
			t.Fatalf("no %s manifest", kind)
		}
		strictly(t, kind, doc, v)
	}
	if _, ok := docs["Ingress"]; ok {
		t.Error("the fleet has an Ingress: its replicas answer TLS themselves")
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	o := parseServe(t, "fleet Deployment args", c.Args)
	if o.https == "" {
		t.Error("-https is empty: the fleet's replicas answer TLS themselves")
	}
	ports := map[string]string{}
	for _, p := range c.Ports {
		ports[p.Name] = strconv.Itoa(int(p.ContainerPort))
	}
	if ports["https"] != port(t, o.https) || ports["http"] != port(t, o.http) || ports["admin"] != port(t, o.admin) {
		t.Errorf("container ports %v; serve listens on https %s, http %s, admin %s", ports, o.https, o.http, o.admin)
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Errorf("Service type %s, traffic policy %s: want a LoadBalancer that keeps clients' addresses (Local)", svc.Spec.Type, svc.Spec.ExternalTrafficPolicy)
	}
	public := map[int32]string{}
	for _, p := range svc.Spec.Ports {
		public[p.Port] = p.TargetPort.String()
	}
	if public[443] != "https" || public[80] != "http" {
		t.Errorf("Service ports %v, want 443 to https and 80 to http", public)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil {
		t.Errorf("the store's PG* variables do not come from a Secret: %+v", c.EnvFrom)
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "PG") {
			t.Errorf("%s is in the manifest: it belongs in the Secret", e.Name)
		}
	}
	var mounted bool
	for _, m := range c.VolumeMounts {
		if m.Name == "config" {
			mounted = m.MountPath == filepath.Dir(o.config) && m.SubPath == ""
		}
	}
	if !mounted {
		t.Errorf("the ConfigMap is not mounted as the directory of %s (a subPath mount never sees an update): %+v", o.config, c.VolumeMounts)
	}
	cfg, err := config.Parse([]byte(cm.Data[filepath.Base(o.config)]), "ConfigMap", filepath.Dir(o.config))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.ACME == nil || cfg.TLS.ACME.Store != config.StorePostgres {
		t.Errorf("the fleet's config does not keep its certificates in the shared store: %+v", cfg.TLS.ACME)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 2 {
		t.Errorf("PodDisruptionBudget %+v: keep at least two of three", pdb.Spec)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v", p)
	}
}
