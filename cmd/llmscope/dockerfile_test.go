package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dockerfile is what TestDockerfile reads of the repo's Dockerfile: the
// final stage's environment, entrypoint and command, and the build command.
type dockerfile struct {
	env        map[string]string
	entrypoint []string
	cmd        []string
	build      string // the RUN line that runs go build
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := dockerfile{env: map[string]string{}}
	var line string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, `\`) { // a continued instruction
			line += strings.TrimSuffix(l, `\`) + " "
			continue
		}
		line += l
		word, rest, _ := strings.Cut(line, " ")
		switch word {
		case "ENV":
			k, v, _ := strings.Cut(rest, "=")
			d.env[k] = v
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &d.entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT %s: %v", rest, err)
			}
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &d.cmd); err != nil {
				t.Fatalf("CMD %s: %v", rest, err)
			}
		case "RUN":
			if strings.Contains(rest, "go build") {
				d.build = rest
			}
		}
		line = ""
	}
	return d
}

// TestDockerfile checks the container image's definition as far as this
// machine can without a Docker engine: its build runs the Makefile's static
// build, and its default command, run as the image would (no shell, the
// image's environment, no admin token), refuses to listen on 0.0.0.0
// without authentication and says why, and serves with a token.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	for _, want := range []string{"CGO_ENABLED=0", "go build", "-trimpath", "-s -w", "./cmd/llmscope"} {
		if !strings.Contains(d.build, want) {
			t.Errorf("the build step lacks %q: %s", want, d.build)
		}
	}
	if len(d.entrypoint) != 1 || filepath.Base(d.entrypoint[0]) != "llmscope" || len(d.cmd) == 0 || d.cmd[0] != "serve" {
		t.Fatalf("ENTRYPOINT %q CMD %q: want llmscope serve …", d.entrypoint, d.cmd)
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	for k, v := range d.env {
		env = append(env, k+"="+strings.ReplaceAll(v, "/data", dir))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, d.cmd...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to listen") || !strings.Contains(string(out), "--admin-token") {
		t.Errorf("the image's command without a token: %v, output %q; want a refusal naming the admin token", err, out)
	}

	// With a token it serves (on a free port instead of 8700, which a test
	// machine may be using: the address is the one thing changed).
	args := append([]string(nil), d.cmd...)
	for i := range args {
		if args[i] == "0.0.0.0:8700" {
			args[i] = "0.0.0.0:0"
		}
	}
	for k, v := range d.env {
		t.Setenv(k, strings.ReplaceAll(v, "/data", dir)) // startChild passes the test's environment on
	}
	t.Setenv("LLMSCOPE_ADMIN_TOKEN", "container-test-token-0123456789")
	cmd = exec.Command(bin, args...)
	cmd.Dir = dir
	base := startChild(t, cmd, "listening on ")
	if base == "" {
		t.Fatal("the image's command with a token did not start serving")
	}
	if _, err := os.Stat(strings.ReplaceAll(d.env["LLMSCOPE_DB"], "/data", dir)); err != nil {
		t.Errorf("store not where the image keeps it: %v", err)
	}
}
