package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// deployDir is the repository's deploy directory, seen from this package.
const deployDir = "../../deploy"

// manifest holds the fields of a Kubernetes object the checks read.
type manifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name   string `yaml:"name"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
						Items      []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		// A Service's selector is a plain map; a Deployment's has
		// matchLabels (read above), so this one is decoded apart.
		Ports []struct {
			Port       int       `yaml:"port"`
			TargetPort yaml.Node `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
	raw yaml.Node
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

// readManifests decodes every document of every YAML file in
// deploy/kubernetes.
func readManifests(t *testing.T) []*manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s/kubernetes (%v)", deployDir, err)
	}
	var out []*manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(false)
		for {
			m := &manifest{}
			if err := dec.Decode(&m.raw); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if err := m.raw.Decode(m); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if m.APIVersion == "" || m.Kind == "" || m.Metadata.Name == "" {
				t.Fatalf("%s: a document without apiVersion, kind or metadata.name", f)
			}
			out = append(out, m)
		}
	}
	return out
}

func findKind(t *testing.T, ms []*manifest, kind string) *manifest {
	t.Helper()
	var found *manifest
	for _, m := range ms {
		if m.Kind == kind {
			if found != nil {
				t.Fatalf("two %s manifests", kind)
			}
			found = m
		}
	}
	if found == nil {
		t.Fatalf("no %s manifest", kind)
	}
	return found
}

// portOf resolves a probe's or a Service's port (a number or a port name)
// against the container's ports; 0 when it names none.
func portOf(n yaml.Node, c container) int {
	for _, p := range c.Ports {
		if n.Value == p.Name || n.Value == strconv.Itoa(p.ContainerPort) {
			return p.ContainerPort
		}
	}
	return 0
}

func TestDeployKubernetes(t *testing.T) {
	ms := readManifests(t)
	dep, svc, sec := findKind(t, ms, "Deployment"), findKind(t, ms, "Service"), findKind(t, ms, "Secret")

	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
		t.Errorf("Deployment replicas = %v, want 3", dep.Spec.Replicas)
	}
	podLabels := dep.Spec.Template.Metadata.Labels
	for k, v := range dep.Spec.Selector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("Deployment selector %s=%s does not match the pod labels %v", k, v, podLabels)
		}
	}
	if len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(dep.Spec.Template.Spec.Containers))
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if len(c.Ports) != 1 {
		t.Fatalf("want one container port, got %v", c.Ports)
	}
	port := c.Ports[0].ContainerPort

	// The command line: only flags serve knows, listening on the container
	// port, with the authentication serve demands off loopback.
	if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("container runs command %q args %q; want the image's entrypoint with args serve …", c.Command, c.Args)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			env[e.Name] = "from-a-secret-0123456789abcdef"
		}
	}
	o := checkServeLine(t, c.Args[1:], env)
	if !strings.HasSuffix(o.addr.val, ":"+strconv.Itoa(port)) {
		t.Errorf("serve --addr %s does not listen on the container port %d", o.addr.val, port)
	}
	if !strings.HasPrefix(env["LLMSCOPE_DB"], "from-a-secret") {
		t.Error("LLMSCOPE_DB (the Postgres URL) does not come from a Secret")
	}
	if keys := o.sec.clientKeys.val; keys != "" {
		if !mountedFromSecret(dep, c, keys) {
			t.Errorf("--client-keys %s is not a file mounted from the Secret", keys)
		}
	}

	for name, p := range map[string]*probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		switch {
		case p == nil || p.HTTPGet == nil:
			t.Errorf("no %s probe with httpGet", name)
		case p.HTTPGet.Path != "/healthz":
			t.Errorf("%s probe path %q, want /healthz", name, p.HTTPGet.Path)
		case portOf(p.HTTPGet.Port, c) != port:
			t.Errorf("%s probe port %q is not the container port %d", name, p.HTTPGet.Port.Value, port)
		}
	}
	ann := dep.Spec.Template.Metadata.Annotations
	for k, want := range map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": strconv.Itoa(port), "prometheus.io/path": "/metrics"} {
		if ann[k] != want {
			t.Errorf("pod annotation %s = %q, want %q", k, ann[k], want)
		}
	}
	for _, k := range []string{"cpu", "memory"} {
		if c.Resources.Requests[k] == "" {
			t.Errorf("no %s request", k)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Error("no memory limit")
	}

	// Every Secret reference names a key the example Secret holds, and the
	// example holds placeholders only.
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if ref.Name != sec.Metadata.Name {
			t.Errorf("env %s refers to Secret %q, the example is %q", e.Name, ref.Name, sec.Metadata.Name)
		} else if _, ok := sec.StringData[ref.Key]; !ok {
			t.Errorf("env %s refers to key %q, which the example Secret lacks", e.Name, ref.Key)
		}
	}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		if v.Secret.SecretName != sec.Metadata.Name {
			t.Errorf("volume %s mounts Secret %q, the example is %q", v.Name, v.Secret.SecretName, sec.Metadata.Name)
		}
		for _, it := range v.Secret.Items {
			if _, ok := sec.StringData[it.Key]; !ok {
				t.Errorf("volume %s uses key %q, which the example Secret lacks", v.Name, it.Key)
			}
		}
	}
	for k, v := range sec.StringData {
		if !strings.Contains(v, "CHANGE-ME") {
			t.Errorf("example Secret key %s holds %q, not a CHANGE-ME placeholder", k, v)
		}
	}
	for _, name := range []string{"LLMSCOPE_DB", "OPENAI_API_KEY", "LLMSCOPE_ADMIN_TOKEN"} {
		if _, ok := env[name]; !ok {
			t.Errorf("the container has no %s", name)
		}
	}

	// The Service reaches the pods on the container port.
	var sel struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
		} `yaml:"spec"`
	}
	if err := svc.raw.Decode(&sel); err != nil {
		t.Fatal(err)
	}
	if len(sel.Spec.Selector) == 0 {
		t.Error("the Service selects no pods")
	}
	for k, v := range sel.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod labels %v", k, v, podLabels)
		}
	}
	if len(svc.Spec.Ports) == 0 || portOf(svc.Spec.Ports[0].TargetPort, c) != port {
		t.Errorf("the Service's targetPort is not the container port %d", port)
	}
}

// mountedFromSecret tells whether file lies in a volume of dep mounted into
// c from a Secret, under a key the volume maps to it.
func mountedFromSecret(dep *manifest, c container, file string) bool {
	for _, vm := range c.VolumeMounts {
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name != vm.Name || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if path.Join(vm.MountPath, it.Path) == file {
					return true
				}
			}
		}
	}
	return false
}

// checkServeLine parses args with serve's own flag parser, env standing in
// for the environment, and checks that serve would accept the exposure
// that results: authentication on a non-loopback address, never --insecure.
func checkServeLine(t *testing.T, args []string, env map[string]string) *serveOptions {
	t.Helper()
	var stderr bytes.Buffer
	o := newServeOptions(&stderr)
	o.s.environ = func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	if err := o.s.parse(args); err != nil {
		t.Fatalf("serve does not accept %q: %v\n%s", args, err, stderr.String())
	}
	if o.sec.insecure.val == "true" {
		t.Errorf("serve runs with --insecure: %q", args)
	}
	admin := o.sec.adminToken.val != "" || o.sec.adminTokenFile.val != ""
	clients := o.sec.clientKeys.val != "" || o.sec.passProviderKeys.val == "true"
	_, serverKey := env["OPENAI_API_KEY"]
	if err := checkExposure(o.addr.val, admin, clients, serverKey, false); err != nil {
		t.Errorf("serve %q would refuse to start: %v", args, err)
	}
	if loopback(o.addr.val) {
		t.Errorf("serve --addr %s is reachable from this machine only", o.addr.val)
	}
	return o
}

// readUnit reads a systemd unit file into section → key → values.
func readUnit(t *testing.T, file string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unit := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			unit[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: unreadable line %q", file, line)
			}
			unit[section][k] = append(unit[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return unit
}

// readEnvFile reads KEY=value lines.
func readEnvFile(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: unreadable line %q", file, line)
		}
		env[k] = v
	}
	return env
}

func TestDeploySystemd(t *testing.T) {
	unit := readUnit(t, filepath.Join(deployDir, "systemd", "llmscope.service"))
	svc := unit["Service"]
	if svc == nil {
		t.Fatal("no [Service] section")
	}
	for k, want := range map[string]string{
		"User":            "llmscope",
		"EnvironmentFile": "/etc/llmscope/env",
		"NoNewPrivileges": "yes",
		"ProtectSystem":   "strict",
		"StateDirectory":  "llmscope",
		"Restart":         "on-failure",
		"PrivateTmp":      "yes",
		"ProtectHome":     "yes",
	} {
		if got := svc[k]; !slices.Equal(got, []string{want}) {
			t.Errorf("%s=%q, want %s", k, got, want)
		}
	}
	if got := unit["Install"]["WantedBy"]; !slices.Equal(got, []string{"multi-user.target"}) {
		t.Errorf("WantedBy=%q, want multi-user.target", got)
	}
	if len(svc["ExecStart"]) != 1 {
		t.Fatalf("want one ExecStart, got %q", svc["ExecStart"])
	}
	fields := strings.Fields(svc["ExecStart"][0])
	if len(fields) < 2 || !filepath.IsAbs(fields[0]) || filepath.Base(fields[0]) != "llmscope" || fields[1] != "serve" {
		t.Fatalf("ExecStart=%q, want /…/llmscope serve …", svc["ExecStart"][0])
	}
	// The environment file the unit reads: its example holds what serve needs.
	env := readEnvFile(t, filepath.Join(deployDir, "systemd", "env.example"))
	for _, name := range []string{"OPENAI_API_KEY", "LLMSCOPE_DB", "LLMSCOPE_ADMIN_TOKEN"} {
		if !strings.Contains(env[name], "CHANGE-ME") {
			t.Errorf("env.example: %s=%q, want a CHANGE-ME placeholder", name, env[name])
		}
	}
	if !strings.HasPrefix(env["LLMSCOPE_DB"], "postgres://") {
		t.Errorf("env.example: LLMSCOPE_DB=%q, want a postgres:// URL", env["LLMSCOPE_DB"])
	}
	checkServeLine(t, fields[2:], env)
}
