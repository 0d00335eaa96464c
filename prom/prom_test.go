package prom

import (
	"bytes"
	"io"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"llmscope"
	"llmscope/internal/needs"
)

func scrape(t testing.TB, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

func call(model string, status int, stream bool) *llmscope.Call {
	c := &llmscope.Call{Operation: llmscope.OpChat, Provider: "openai", RequestModel: model, Status: status, Stream: stream,
		DurationMS: 250, TTFTMS: 80, OverheadMS: 0.05,
		Usage: llmscope.Usage{InputTokens: 20, OutputTokens: 100, TotalTokens: 120, Source: llmscope.UsageReported},
		Cost:  &llmscope.Cost{TotalUSD: 0.001}}
	if status >= 400 {
		c.ErrorType = "429"
		c.Usage = llmscope.Usage{Source: llmscope.UsageNone}
		c.Cost = nil
	}
	return c
}

func TestMetricsExposed(t *testing.T) {
	depth := 7
	m := New(func() int { return depth })
	m.CostUnknown()
	m.CostUnknown()
	m.Dropped("queue_full")
	m.Record(call("gpt-4o", 200, true))
	m.Record(call("gpt-4o", 200, false))
	m.Record(call("gpt-4o", 429, false))
	body := scrape(t, m)
	for _, want := range []string{
		"llmscope_cost_unknown_total 2",
		`llmscope_dropped_total{reason="queue_full"} 1`,
		"llmscope_store_queue_depth 7",
		`llmscope_requests_total{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",status_code="200"} 2`,
		`llmscope_requests_total{error_type="429",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",status_code="429"} 1`,
		`llmscope_tokens_total{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",type="output"} 200`,
		`gen_ai_client_token_usage_bucket{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",gen_ai_token_type="input",le="64"} 2`,
		`gen_ai_client_operation_duration_seconds_count{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o"} 2`,
		`gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",le="0.32"} 2`,
		`gen_ai_client_operation_time_to_first_chunk_seconds_count{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o"} 1`,
		`llmscope_cost_usd_total{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o"} 0.002`,
		"llmscope_gateway_overhead_seconds_count 3",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestModelLabelCap(t *testing.T) {
	m := NewCapped(func() int { return 0 }, 3)
	for _, model := range []string{"a", "b", "c", "d", "e", "a", "user-controlled-1", "user-controlled-2"} {
		m.Record(call(model, 200, false))
	}
	body := scrape(t, m)
	for _, want := range []string{`gen_ai_request_model="a",status_code="200"} 2`, `gen_ai_request_model="other",status_code="200"} 4`, "llmscope_model_label_overflow_total 4"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, banned := range []string{`"d"`, `"e"`, "user-controlled"} {
		if strings.Contains(body, banned) {
			t.Errorf("model beyond the cap leaked into labels: %s", banned)
		}
	}
	if n := len(m.genai.series); n > 4 {
		t.Errorf("%d series kept for 3 models + other", n)
	}
}

func TestHostileModelNames(t *testing.T) {
	m := NewCapped(func() int { return 0 }, 2)
	m.Record(call("gpt-\xff", 200, false)) // invalid UTF-8 must not panic
	for i := range 50 {                    // refused made-up models do not fill the cap
		m.Record(call("made-up-"+strings.Repeat("x", i), 404, false))
	}
	m.Record(call("gpt-4o", 200, false))
	body := scrape(t, m)
	if !strings.Contains(body, `gen_ai_request_model="gpt-4o",status_code="200"} 1`) || strings.Contains(body, "made-up") {
		t.Errorf("cap filled by failing calls or made-up names leaked:\n%s", body)
	}
}

func TestPromtoolAcceptsMetrics(t *testing.T) {
	promtool := needs.Binary(t, "promtool", "run scripts/test-deps.sh (Debian package prometheus)")
	m := New(func() int { return 0 })
	m.Record(call("gpt-4o", 200, true))
	m.Record(call("gpt-4o", 500, false))
	m.ExportLag("mlflow", 0)
	m.ExportFailure("mlflow")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape(t, m))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	m := New(func() int { return 0 })
	c := call("gpt-4o", 200, true)
	m.Record(c)
	if n := testing.AllocsPerRun(1000, func() { m.Record(c) }); n != 0 {
		t.Errorf("Record allocates %v times per call in the steady state", n)
	}
}

// BenchmarkRecord measures the per-call metric update on the request path.
func BenchmarkRecord(b *testing.B) {
	m := New(func() int { return 0 })
	calls := []*llmscope.Call{call("gpt-4o", 200, true), call("gpt-4o-mini", 200, false), call("gpt-4o", 429, false)}
	for _, c := range calls {
		m.Record(c)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Record(calls[i%3])
		i++
	}
}

func TestStoreWriteErrors(t *testing.T) {
	m := New(func() int { return 0 })
	body := scrape(t, m)
	for _, reason := range llmscope.WriteErrorReasons() {
		if want := `llmscope_store_write_errors_total{reason="` + reason + `"} 0`; !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q before any error", want)
		}
	}
	m.StoreWriteError(llmscope.WriteDiskFull)
	m.StoreWriteError(llmscope.WriteDiskFull)
	m.StoreWriteError("made-up")
	body = scrape(t, m)
	for _, want := range []string{
		`llmscope_store_write_errors_total{reason="disk_full"} 2`,
		`llmscope_store_write_errors_total{reason="other"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "made-up") {
		t.Error("an unknown reason became a label value")
	}
}

func TestLongLabelValuesAreCapped(t *testing.T) {
	m := New(func() int { return 0 })
	huge := strings.Repeat("m", 1<<20)
	for i := range 5 {
		c := call(huge+strings.Repeat("x", i), 200, true)
		if i == 4 {
			c.Provider = huge
			c.Status, c.ErrorType = 500, huge
		}
		m.Record(c)
	}
	edge := strings.Repeat("e", MaxLabelLen) // the longest kept
	m.Record(call(edge, 200, false))
	body := scrape(t, m)
	if len(body) > 64<<10 {
		t.Fatalf("/metrics is %d bytes after 5 calls with a 1 MB model name", len(body))
	}
	for _, want := range []string{
		`gen_ai_request_model="other",status_code="200"} 4`,
		`error_type="other",gen_ai_operation_name="chat",gen_ai_provider_name="other",gen_ai_request_model="other",status_code="500"} 1`,
		`gen_ai_request_model="` + edge + `",status_code="200"} 1`,
		"llmscope_model_label_overflow_total 5",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestRoutingMetrics(t *testing.T) {
	m := New(func() int { return 0 })
	c := call("claude-sonnet-4-5", 200, true)
	c.Provider, c.Upstream, c.Attempts = "anthropic", "claude-b", 2
	c.Tries = []llmscope.Try{{Upstream: "claude-a", Status: 529, Outcome: "status", Retried: true}, {Upstream: "claude-b", Status: 200, Outcome: "ok"}}
	m.Record(c)
	m.Record(call("gpt-4o", 200, false)) // not routed: no attempt counted
	m.RouteEvent("claude", "claude-a", "failover")
	body := scrape(t, m)
	for _, want := range []string{
		`llmscope_upstream_attempts_total{outcome="status",upstream="claude-a"} 1`,
		`llmscope_upstream_attempts_total{outcome="ok",upstream="claude-b"} 1`,
		`llmscope_route_events_total{kind="failover",route="claude",upstream="claude-a"} 1`,
		`llmscope_requests_total{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="anthropic",gen_ai_request_model="claude-sonnet-4-5",status_code="200"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Count(body, "llmscope_upstream_attempts_total{") != 2 {
		t.Errorf("attempt series: want exactly the two of the routed call")
	}
}
