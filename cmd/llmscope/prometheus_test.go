package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"llmscope/internal/needs"
)

// startPrometheus runs a real Prometheus scraping target every second, with
// the project's alert rules loaded, and returns its base URL.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	return startPrometheusWith(t, target, "")
}

// startPrometheusWith is startPrometheus with extra lines (YAML, indented
// as the job's keys) in the scrape job.
func startPrometheusWith(t *testing.T, target, job string) string {
	t.Helper()
	bin := needs.Binary(t, "prometheus", "run scripts/test-deps.sh (Debian package prometheus)")
	dir := t.TempDir()
	rules, err := filepath.Abs("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: llmscope
    static_configs: [{targets: [%q]}]
%s`, rules, target, job)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		if r, err := http.Get(base + "/-/ready"); err == nil && r.StatusCode == 200 {
			r.Body.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready:\n%s", log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// promQuery runs an instant query and returns the single value of its
// result, or an error (a parse error included).
func promQuery(base, q string) (float64, int, error) {
	r, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, 0, err
	}
	defer r.Body.Close()
	var res struct {
		Status, Error string
		Data          struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&res); err != nil {
		return 0, 0, err
	}
	if res.Status != "success" {
		return 0, 0, fmt.Errorf("%s: %s", q, res.Error)
	}
	if len(res.Data.Result) == 0 {
		return 0, 0, nil
	}
	s, _ := res.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, len(res.Data.Result), err
}

func TestPrometheusScrapesServe(t *testing.T) {
	_, base, _, _ := startServe(t)
	prom := startPrometheus(t, strings.TrimPrefix(base, "http://"))

	const k = 40
	for i := range k {
		model := []string{"gpt-4o-mini", "gpt-4o", "o4-mini"}[i%3]
		h := map[string]string{}
		switch i % 10 {
		case 7:
			h["X-Sim-Fault"] = "status=429"
		case 9:
			h["X-Sim-Fault"] = "status=500"
		}
		body := fmt.Sprintf(`{"model":%q,"stream":%t,"messages":[{"role":"user","content":"call %d"}]}`, model, i%2 == 0, i)
		if i%5 == 3 {
			body = fmt.Sprintf(`{"model":"text-embedding-3-small","input":["call %d"]}`, i)
		}
		path := "/v1/chat/completions"
		if strings.Contains(body, "text-embedding") {
			path = "/v1/embeddings"
		}
		sendJSON(t, base+path, body, h)
	}
	stats := waitStats(t, base, k)
	eventually(t, "Prometheus to see every call", 60*time.Second, func() bool {
		v, _, err := promQuery(prom, "sum(llmscope_requests_total)")
		return err == nil && v == k
	})
	for q, want := range map[string]float64{
		"sum(llmscope_requests_total)":                                   k,
		`sum(llmscope_tokens_total{type="input"})`:                       float64(stats.Totals.InputTokens),
		`sum(llmscope_tokens_total{type="output"})`:                      float64(stats.Totals.OutputTokens),
		"sum(gen_ai_client_operation_duration_seconds_count)":            k,
		`sum(llmscope_requests_total{error_type!=""})`:                   float64(stats.Totals.Errors),
		`sum(gen_ai_client_token_usage_sum{gen_ai_token_type="input"})`:  float64(stats.Totals.InputTokens),
		`sum(gen_ai_client_token_usage_sum{gen_ai_token_type="output"})`: float64(stats.Totals.OutputTokens),
		"sum(llmscope_gateway_overhead_seconds_count)":                   k,
	} {
		got, _, err := promQuery(prom, q)
		if err != nil || got != want {
			t.Errorf("%s = %v (%v), want %v", q, got, err, want)
		}
	}
	if stats.Totals.Errors == 0 || stats.Totals.InputTokens == 0 {
		t.Fatalf("traffic lacks errors or tokens: %+v", stats.Totals)
	}

	// Every expression of the Grafana dashboard parses and runs.
	raw, err := os.ReadFile("../../deploy/grafana/llmscope.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Templating struct {
			List []struct {
				Name       string
				IncludeAll bool
				AllValue   string
			}
		}
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	// Several gateways: an instance variable (All by default) that every
	// query selects on, the panels adding the gateways up.
	hasInstance := false
	for _, v := range dash.Templating.List {
		if v.Name == "instance" && v.IncludeAll && v.AllValue == ".*" {
			hasInstance = true
		}
	}
	if !hasInstance {
		t.Errorf("dashboard has no instance variable with All (.*): %+v", dash.Templating.List)
	}
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			n++
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q does not select the chosen gateways: %s", p.Title, tg.Expr)
			}
			expr := strings.ReplaceAll(tg.Expr, "$__rate_interval", "1m")
			expr = strings.ReplaceAll(expr, "$instance", ".*")
			if _, _, err := promQuery(prom, expr); err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
			}
		}
	}
	if n < 10 {
		t.Errorf("dashboard has only %d queries", n)
	}
	// The alert rules loaded.
	r, err := http.Get(prom + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var rules struct {
		Data struct{ Groups []struct{ Rules []any } }
	}
	_ = json.NewDecoder(r.Body).Decode(&rules)
	file, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Count(string(file), "- alert:"); len(rules.Data.Groups) != 1 || len(rules.Data.Groups[0].Rules) != want {
		t.Errorf("alert rules not loaded (want the file's %d): %+v", want, rules.Data)
	}
}

func TestPromtoolChecksDeployFiles(t *testing.T) {
	promtool := needs.Binary(t, "promtool", "run scripts/test-deps.sh (Debian package prometheus)")
	for _, args := range [][]string{
		{"check", "rules", "../../deploy/prometheus/alerts.yml"},
		{"check", "config", "../../deploy/prometheus/prometheus.yml"},
	} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
	_, base, _, _ := startServe(t)
	chatCall(t, base, true, 0.1, nil)
	r, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = r.Body
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics on serve's /metrics: %v\n%s", err, out)
	}
}

// TestPrometheusScrapesWithTheAdminToken: with an admin token, /metrics
// refuses a scrape without it, and Prometheus' authorization configuration
// scrapes it.
func TestPrometheusScrapesWithTheAdminToken(t *testing.T) {
	_, base, _, _ := startServe(t, "--admin-token", testAdminToken)
	if s, _, _ := request(t, "GET", base+"/metrics", "", nil); s != 401 {
		t.Fatalf("/metrics without the token = %d, want 401", s)
	}
	target := strings.TrimPrefix(base, "http://")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(testAdminToken), 0o600); err != nil {
		t.Fatal(err)
	}
	prom := startPrometheusWith(t, target, fmt.Sprintf("    authorization: {credentials_file: %q}\n", tokenFile))
	sendJSON(t, base+"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, nil)
	eventually(t, "Prometheus to scrape with the token", 60*time.Second, func() bool {
		up, _, err := promQuery(prom, `up{job="llmscope"}`)
		n, _, err2 := promQuery(prom, "sum(llmscope_requests_total)")
		return err == nil && err2 == nil && up == 1 && n == 1
	})
}
