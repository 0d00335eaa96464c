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
