package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile(".env", []byte("LLMSCOPE_ADDR=10.0.0.1:1\nLLMSCOPE_DB=from-dotenv.db\nLLMSCOPE_QUEUE_SIZE=7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("addr: 10.0.0.2:2\ndb: from-config.db\nqueue-size: 9\ncapture: true\nexperiment: from-config\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LLMSCOPE_ADDR": "10.0.0.3:3"}
	o := newServeOptions(&bytes.Buffer{})
	o.s.environ = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := o.s.parse([]string{"--config", cfg, "--experiment", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want string }{
		{o.experiment.val, "from-flag"}, // flag beats everything
		{o.addr.val, "10.0.0.3:3"},      // environment beats .env and config
		{o.db.val, "from-dotenv.db"},    // .env beats config
		{o.capture.val, "true"},         // config beats default
		{o.maxBody.val, "32MiB"},        // default
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestSettingsRejectsUnknownConfigKey(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("c.yaml", []byte("adr: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := newServeOptions(&bytes.Buffer{})
	err := o.s.parse([]string{"--config", "c.yaml"})
	if err == nil || !strings.Contains(err.Error(), `unknown key "adr"`) {
		t.Errorf("err = %v, want unknown key", err)
	}
}

func TestServeHelpDocumentsEveryOption(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"serve", "--help"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	help := errb.String()
	for _, name := range []string{"addr", "db", "upstream", "experiment", "capture", "capture-max-bytes", "max-body-bytes", "queue-size", "config", "shutdown-timeout"} {
		if !strings.Contains(help, "-"+name) {
			t.Errorf("serve --help does not mention --%s", name)
		}
	}
	for _, env := range []string{"LLMSCOPE_ADDR", "LLMSCOPE_DB", "OPENAI_BASE_URL", "MLFLOW_EXPERIMENT_NAME"} {
		if !strings.Contains(help, env) {
			t.Errorf("serve --help does not mention %s", env)
		}
	}
}

// TestListAndAutoOptions: a list option gathers repeated flags, an
// environment variable's lines or a config file's YAML list; capture is
// "auto" by default, on with --mlflow, and a bare --capture or
// --capture=false overrides that.
func TestListAndAutoOptions(t *testing.T) {
	t.Chdir(t.TempDir())
	parse := func(env map[string]string, config string, args ...string) *serveOptions {
		t.Helper()
		if config != "" {
			if err := os.WriteFile("c.yaml", []byte(config), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--config", "c.yaml")
		}
		o := newServeOptions(&bytes.Buffer{})
		o.s.environ = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		if err := o.s.parse(args); err != nil {
			t.Fatal(err)
		}
		return o
	}
	for _, c := range []struct {
		name string
		o    *serveOptions
		want []string
	}{
		{"flags", parse(nil, "", "--redact-pattern", `acct-\d+`, "--redact-pattern", `x,y`), []string{`acct-\d+`, `x,y`}},
		{"env", parse(map[string]string{"LLMSCOPE_REDACT_PATTERNS": "a+\nb+\n"}, ""), []string{"a+", "b+"}},
		{"config", parse(nil, "redact-pattern:\n  - 'id-[0-9]{4}'\n  - 'zz'\n"), []string{"id-[0-9]{4}", "zz"}},
		{"none", parse(nil, ""), nil},
	} {
		if got := c.o.redactPatterns.Lines(); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: patterns %q, want %q", c.name, got, c.want)
		}
	}
	for _, c := range []struct {
		args   []string
		mlflow bool
		want   bool
	}{
		{nil, false, false},
		{nil, true, true},
		{[]string{"--capture"}, false, true},
		{[]string{"--capture=false"}, true, false},
		{[]string{"--capture=auto"}, true, true},
	} {
		got, err := parse(nil, "", c.args...).capture.AutoBool(c.mlflow)
		if err != nil || got != c.want {
			t.Errorf("%v with mlflow=%v: capture %v (%v), want %v", c.args, c.mlflow, got, err, c.want)
		}
	}
	o := newServeOptions(&bytes.Buffer{})
	if err := o.s.parse([]string{"--capture=sometimes"}); err == nil {
		t.Error("--capture=sometimes accepted")
	}
}
