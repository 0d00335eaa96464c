package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"llmscope/internal/mlflowtest"
)

// TestAutologSideBySide makes the same OpenAI calls twice with the Python
// openai client against a real MLflow server: once with
// mlflow.openai.autolog() straight to the simulator (experiment "autolog"),
// once without autolog through `llmscope serve` (experiment "llmscope"),
// then compares the two sets of traces field by field. The reference is
// what autolog records; the llmscope rows must match it where the table
// says so. testdata/autolog/run.py makes the calls and reads the traces
// back with MlflowClient; it prints one JSON document per side.
//
// Artifacts (both JSON documents, the table, screenshots of the MLflow UI
// for the trace of each kind on each side; llmscope's are asserted) go to
// $LLMSCOPE_ARTIFACTS, else to a temporary directory; the test logs the path.
func TestAutologSideBySide(t *testing.T) {
	began := time.Now()
	python := sbsPython(t)
	ml := mlflowtest.Start(t)
	sim := startSim(t)
	_, gw, _, serveErr := startServe(t, "--upstream", sim+"/v1", "--mlflow", ml.URL, "--run-idle", "2s")

	artifacts := os.Getenv("LLMSCOPE_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifacts: %s", artifacts)
	t.Logf("mlflow %s, sim %s, gateway %s: up after %v", ml.URL, sim, gw, time.Since(began).Round(time.Millisecond))

	script, err := filepath.Abs(filepath.Join("testdata", "autolog", "run.py"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		docs [2]*sbsDoc
		errs [2]error
	)
	for i, side := range []string{"autolog", "llmscope"} {
		wg.Go(func() {
			docs[i], errs[i] = sbsRunSide(t, python, script, side, sim, gw, ml.URL, artifacts)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("run.py: %v\n--- serve stderr ---\n%s", err, serveErr.String())
		}
	}
	a, l := docs[0], docs[1]
	for _, d := range []*sbsDoc{a, l} {
		t.Logf("%s: experiment %s, run %s, mlflow %s, openai %s", d.Side, d.ExperimentID, d.RunID, d.Versions["mlflow"], d.Versions["openai"])
		for _, e := range d.Errors {
			t.Errorf("%s side: run.py: %s", d.Side, e)
		}
	}

	tb := &sbsTable{t: t}
	sbsCompare(tb, a, l)
	tb.log()
	if err := os.WriteFile(filepath.Join(artifacts, "table.md"), []byte(tb.markdown()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("table: %s", filepath.Join(artifacts, "table.md"))

	// Screenshots: llmscope's traces (asserted), autolog's beside them.
	sbsScreenshots(t, ml.URL, []*sbsDoc{l, a}, artifacts)
	t.Logf("done in %v", time.Since(began).Round(time.Millisecond))
}

// sbsKinds are the calls run.py makes, in order.
var sbsKinds = []string{"chat", "chat_stream", "tools", "embeddings", "responses", "responses_stream", "error", "run"}

// sbsChatKinds are the kinds answered by /v1/chat/completions with a body.
var sbsChatKinds = []string{"chat", "chat_stream", "tools", "run"}

// sbsDoc is run.py's output.
type sbsDoc struct {
	Side         string                    `json:"side"`
	Versions     map[string]string         `json:"versions"`
	ExperimentID string                    `json:"experiment_id"`
	RunID        string                    `json:"run_id"`
	Calls        map[string]*sbsCall       `json:"calls"`
	Sent         map[string]map[string]any `json:"sent"`
	Filters      []sbsFilter               `json:"filters"`
	Errors       []string                  `json:"errors"`
}

type sbsCall struct {
	Client    map[string]any `json:"client"`
	TraceID   string         `json:"trace_id"`
	Info      *sbsInfo       `json:"info"`
	SpanCount int            `json:"span_count"`
	SpanNames []string       `json:"span_names"`
	Root      *sbsSpan       `json:"root"`
}

type sbsInfo struct {
	TraceID         string            `json:"trace_id"`
	State           string            `json:"state"`
	RequestPreview  string            `json:"request_preview"`
	ResponsePreview string            `json:"response_preview"`
	TraceMetadata   map[string]string `json:"trace_metadata"`
	Tags            map[string]string `json:"tags"`
	TokenUsage      any               `json:"token_usage"`
}

type sbsSpan struct {
	Name              string         `json:"name"`
	SpanType          any            `json:"span_type"`
	StatusCode        string         `json:"status_code"`
	StatusDescription string         `json:"status_description"`
	Attributes        map[string]any `json:"attributes"`
	Inputs            any            `json:"inputs"`
	Outputs           any            `json:"outputs"`
	Events            []sbsEvent     `json:"events"`
}

type sbsEvent struct {
	Name       string         `json:"name"`
	Attributes map[string]any `json:"attributes"`
}

type sbsFilter struct {
	Name   string `json:"name"`
	Filter string `json:"filter"`
	Count  *int   `json:"count"`
	Error  string `json:"error"`
}

// sbsPython returns the venv's Python with openai importable, or stops the
// test (fails it under CI=true).
func sbsPython(t *testing.T) string {
	t.Helper()
	stop := func(msg string) {
		t.Helper()
		msg = "\n\n*** " + msg + ": run scripts/mlflow-venv.sh (it installs MLflow and the openai package) ***\n"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg + "(skipping; under CI=true this test fails)")
	}
	bin := mlflowtest.Binary()
	if bin == "" {
		stop("the MLflow venv is missing")
	}
	py := filepath.Join(filepath.Dir(bin), "python")
	if _, err := os.Stat(py); err != nil {
		stop("no python next to " + bin)
	}
	out, err := exec.Command(py, "-c", "import openai, mlflow.openai; print(openai.__version__)").CombinedOutput()
	if err != nil {
		stop(fmt.Sprintf("%s cannot import openai and mlflow.openai (%v: %s)", py, err, bytes.TrimSpace(out)))
	}
	return py
}

// sbsRunSide runs run.py for one side and decodes its document; it keeps
// the raw document and run.py's stderr in the artifact dir.
func sbsRunSide(t *testing.T, python, script, side, sim, gw, mlflowURL, artifacts string) (*sbsDoc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, script, "--side", side, "--sim", sim, "--gateway", gw, "--mlflow", mlflowURL, "--timeout", "60")
	cmd.Dir = t.TempDir() // nothing of MLflow's lands in the repository
	cmd.Env = append(os.Environ(), "OPENAI_API_KEY=", "OPENAI_BASE_URL=", "MLFLOW_TRACKING_URI=", "MLFLOW_EXPERIMENT_NAME=",
		"MLFLOW_DISABLE_TELEMETRY=true", "DO_NOT_TRACK=true", "PYTHONUNBUFFERED=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	_ = os.WriteFile(filepath.Join(artifacts, side+".stderr.txt"), stderr.Bytes(), 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %v\n--- stderr ---\n%s", side, err, stderr.String())
	}
	t.Logf("run.py --side %s: %v", side, time.Since(start).Round(time.Millisecond))
	// The document is the last line (run.py keeps stdout for it alone).
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	raw := []byte(lines[len(lines)-1])
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") == nil {
		raw = pretty.Bytes()
	}
	p := filepath.Join(artifacts, side+".json")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		return nil, err
	}
	t.Logf("%s document: %s", side, p)
	var d sbsDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: decode document: %v", side, err)
	}
	return &d, nil
}

// sbsTable collects the rows of the comparison.
type sbsTable struct {
	t    *testing.T
	rows []sbsRow
}

type sbsRow struct {
	n                 int
	kind, check       string
	autolog, llmscope string
	result            string // PASS, FAIL or INFO
	why               string
}

// check adds a row that fails the test (see log) when ok is false.
func (tb *sbsTable) check(n int, kind, check string, autolog, llmscope any, ok bool, why string) {
	r := sbsRow{n: n, kind: kind, check: check, autolog: sbsShow(autolog), llmscope: sbsShow(llmscope), result: "PASS"}
	if !ok {
		r.result, r.why = "FAIL", why
	}
	tb.rows = append(tb.rows, r)
}

// info adds a row that only reports.
func (tb *sbsTable) info(n int, kind, check string, autolog, llmscope any, note string) {
	tb.rows = append(tb.rows, sbsRow{n: n, kind: kind, check: check, autolog: sbsShow(autolog), llmscope: sbsShow(llmscope), result: "INFO", why: note})
}

// log prints every row, then fails the test once, naming the failed rows.
func (tb *sbsTable) log() {
	var failed []string
	for _, r := range tb.rows {
		line := fmt.Sprintf("%-4s row %2d %-16s %-34s autolog=%s | llmscope=%s", r.result, r.n, r.kind, r.check, r.autolog, r.llmscope)
		if r.why != "" {
			line += "  -- " + r.why
		}
		tb.t.Log(line)
		if r.result == "FAIL" {
			failed = append(failed, fmt.Sprintf("row %d %s %s: %s", r.n, r.kind, r.check, r.why))
		}
	}
	tb.t.Logf("side by side: %d rows, %d fail", len(tb.rows), len(failed))
	if len(failed) > 0 {
		tb.t.Errorf("%d rows of the side-by-side table fail (table above):\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
}

func (tb *sbsTable) markdown() string {
	var b strings.Builder
	b.WriteString("| row | kind | check | autolog | llmscope | result |\n|---|---|---|---|---|---|\n")
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }
	for _, r := range tb.rows {
		res := r.result
		if r.why != "" {
			res += ": " + r.why
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", r.n, r.kind, esc(r.check), esc(r.autolog), esc(r.llmscope), esc(res))
	}
	return b.String()
}

// sbsShow renders a value for the table: strings as they are, the rest as
// compact JSON, cut to a readable length.
func sbsShow(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		s = "∅"
	case string:
		s = fmt.Sprintf("%q", x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			s = fmt.Sprint(x)
		} else {
			s = string(b)
		}
	}
	const max = 90
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}

// sbsGet walks decoded JSON: string keys for objects, ints for arrays.
func sbsGet(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k < 0 || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func sbsStr(v any) string          { s, _ := v.(string); return s }
func sbsNum(v any) (float64, bool) { f, ok := v.(float64); return f, ok }

// sbsEqual compares decoded JSON values (object key order never matters).
func sbsEqual(a, b any) bool {
	return reflect.DeepEqual(sbsNorm(a), sbsNorm(b))
}

func sbsNorm(v any) any {
	var out any
	b, err := json.Marshal(v)
	if err != nil || json.Unmarshal(b, &out) != nil {
		return v
	}
	return out
}

func sbsKeys(v any) []string {
	m, _ := v.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sbsRespText is the text of a Responses API object's message items.
func sbsRespText(out any) string {
	var b strings.Builder
	items, _ := sbsGet(out, "output").([]any)
	for _, it := range items {
		if sbsStr(sbsGet(it, "type")) != "message" {
			continue
		}
		parts, _ := sbsGet(it, "content").([]any)
		for _, p := range parts {
			if sbsStr(sbsGet(p, "type")) == "output_text" {
				b.WriteString(sbsStr(sbsGet(p, "text")))
			}
		}
	}
	return b.String()
}

// sbsItemTypes lists the types of a Responses API object's output items.
func sbsItemTypes(out any) []string {
	var types []string
	items, _ := sbsGet(out, "output").([]any)
	for _, it := range items {
		types = append(types, sbsStr(sbsGet(it, "type")))
	}
	return types
}

// sbsToolCalls reduces tool calls to what must match: type, function name
// and arguments (ids differ per request).
func sbsToolCalls(v any) []map[string]any {
	calls, _ := v.([]any)
	var out []map[string]any
	for _, c := range calls {
		args := sbsStr(sbsGet(c, "function", "arguments"))
		var parsed any
		if json.Unmarshal([]byte(args), &parsed) != nil {
			parsed = args
		}
		out = append(out, map[string]any{"type": sbsGet(c, "type"), "name": sbsGet(c, "function", "name"), "arguments": parsed, "has_id": sbsStr(sbsGet(c, "id")) != ""})
	}
	return out
}

// sbsToolCallIDs lists the ids of tool calls.
func sbsToolCallIDs(v any) []string {
	calls, _ := v.([]any)
	var out []string
	for _, c := range calls {
		out = append(out, sbsStr(sbsGet(c, "id")))
	}
	return out
}

func sbsCount(d *sbsDoc, name string) (*int, string, bool) {
	for _, f := range d.Filters {
		if f.Name == name {
			return f.Count, f.Error, true
		}
	}
	return nil, "", false
}

func sbsLastUser(msgs any) string {
	list, _ := msgs.([]any)
	for i := len(list) - 1; i >= 0; i-- {
		if sbsStr(sbsGet(list[i], "role")) == "user" {
			return sbsStr(sbsGet(list[i], "content"))
		}
	}
	return ""
}

func sbsPrefix(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// sbsCompare fills the table.
func sbsCompare(tb *sbsTable, a, l *sbsDoc) {
	read := func(c *sbsCall) (string, bool) {
		if c == nil {
			return "", false
		}
		return c.TraceID, c.Root != nil && c.Info != nil
	}
	for _, kind := range sbsKinds {
		ac, lc := a.Calls[kind], l.Calls[kind]
		aID, aOK := read(ac)
		lID, lOK := read(lc)
		tb.check(0, kind, "trace read back", aID, lID, aOK && lOK, "a trace with a root span on both sides")
		if aOK && lOK {
			sbsCompareCall(tb, kind, a, l, ac, lc)
		}
	}
	sbsCompareFilters(tb, a, l)
}

func sbsCompareCall(tb *sbsTable, kind string, a, l *sbsDoc, ac, lc *sbsCall) {
	ar, lr := ac.Root, lc.Root
	sent := l.Sent[kind]
	client := lc.Client
	isChat := slices.Contains(sbsChatKinds, kind)
	isResp := kind == "responses" || kind == "responses_stream"
	isStream := kind == "chat_stream" || kind == "responses_stream"

	tb.info(0, kind, "span count / names", ac.SpanNames, lc.SpanNames, "")

	// 1. Span type: MLflow's own value, stored so that span.type filters match.
	tb.check(1, kind, "root span_type", ar.SpanType, lr.SpanType,
		sbsStr(ar.SpanType) != "" && sbsEqual(ar.SpanType, lr.SpanType), "span_type differs from autolog's")

	// 2. Trace name and span name.
	at, lt := ac.Info.Tags["mlflow.traceName"], lc.Info.Tags["mlflow.traceName"]
	tb.check(2, kind, `tags["mlflow.traceName"]`, at, lt, lt != "" && lt == at, "trace name missing or not autolog's")
	tb.check(2, kind, "root span name", ar.Name, lr.Name, lr.Name == ar.Name, "span name not autolog's")

	// 3. Tools.
	if kind == "tools" {
		tools := sent["tools"]
		tb.check(3, kind, "inputs.tools == tools sent", sbsGet(ar.Inputs, "tools"), sbsGet(lr.Inputs, "tools"),
			tools != nil && sbsEqual(sbsGet(lr.Inputs, "tools"), tools), "inputs do not hold the full tools array sent")
		tb.check(3, kind, "attr mlflow.chat.tools", ar.Attributes["mlflow.chat.tools"], lr.Attributes["mlflow.chat.tools"],
			ar.Attributes["mlflow.chat.tools"] != nil && sbsEqual(ar.Attributes["mlflow.chat.tools"], lr.Attributes["mlflow.chat.tools"]),
			"mlflow.chat.tools differs from autolog's")
	}

	// 4. Message format (every kind autolog marks), Responses objects.
	if af, ok := ar.Attributes["mlflow.message.format"]; ok {
		lf := lr.Attributes["mlflow.message.format"]
		tb.check(4, kind, "attr mlflow.message.format", af, lf, sbsEqual(af, lf), "message format differs from autolog's")
	} else {
		tb.info(4, kind, "attr mlflow.message.format", nil, lr.Attributes["mlflow.message.format"], "autolog sets none for this kind")
	}
	if isResp {
		ao, lo := ar.Outputs, lr.Outputs
		tb.check(4, kind, "outputs.object", sbsGet(ao, "object"), sbsGet(lo, "object"),
			sbsStr(sbsGet(lo, "object")) == "response", `outputs are not a Response object (object "response")`)
		tb.check(4, kind, "outputs.id", sbsGet(ao, "id"), sbsGet(lo, "id"),
			sbsStr(sbsGet(lo, "id")) != "" && sbsStr(sbsGet(lo, "id")) == sbsStr(client["id"]),
			"response id missing or not the one the client received")
		tb.check(4, kind, "outputs.output item types", sbsItemTypes(ao), sbsItemTypes(lo),
			len(sbsItemTypes(lo)) > 0 && slices.Equal(sbsItemTypes(ao), sbsItemTypes(lo)), "output items differ from autolog's")
		want := sbsStr(client["content"])
		tb.check(4, kind, "outputs.output message text", sbsPrefix(sbsRespText(ao), 40), sbsPrefix(sbsRespText(lo), 40),
			want != "" && sbsRespText(lo) == want && sbsRespText(ao) == sbsRespText(lo), "message text is not the answer the client received")
		au, lu := sbsGet(ao, "usage"), sbsGet(lo, "usage")
		tb.check(4, kind, "outputs.usage", au, lu,
			lu != nil && sbsEqual(sbsGet(au, "input_tokens"), sbsGet(lu, "input_tokens")) && sbsEqual(sbsGet(au, "output_tokens"), sbsGet(lu, "output_tokens")),
			"usage missing or its token counts differ from autolog's")
		tb.check(4, kind, "inputs.input", sbsGet(ar.Inputs, "input"), sbsGet(lr.Inputs, "input"),
			sbsEqual(sbsGet(lr.Inputs, "input"), sent["input"]), "inputs do not hold the input sent")
		tb.check(4, kind, "inputs.instructions", sbsGet(ar.Inputs, "instructions"), sbsGet(lr.Inputs, "instructions"),
			sbsEqual(sbsGet(lr.Inputs, "instructions"), sent["instructions"]), "inputs do not hold the instructions sent")
	}

	// 5. Errors.
	if kind == "error" {
		tb.check(5, kind, "trace state", ac.Info.State, lc.Info.State, lc.Info.State == "ERROR" && ac.Info.State == "ERROR", "state is not ERROR")
		tb.check(5, kind, "root status code", ar.StatusCode, lr.StatusCode, lr.StatusCode == "ERROR", "root span status is not ERROR")
		tb.check(5, kind, "root status description", ar.StatusDescription, lr.StatusDescription, lr.StatusDescription != "", "empty status description")
		upstream := sbsStr(sbsGet(client["body"], "message"))
		aex, lex := sbsEventNamed(ar, "exception"), sbsEventNamed(lr, "exception")
		tb.check(5, kind, "event exception", aex != nil, lex != nil, lex != nil, `no span event named "exception"`)
		var at, lt, am, lm any
		if aex != nil {
			at, am = aex.Attributes["exception.type"], aex.Attributes["exception.message"]
		}
		if lex != nil {
			lt, lm = lex.Attributes["exception.type"], lex.Attributes["exception.message"]
		}
		tb.check(5, kind, "exception.type", at, lt, sbsStr(lt) != "", "exception.type missing")
		tb.check(5, kind, "exception.message has upstream text", am, lm,
			upstream != "" && strings.Contains(sbsStr(lm), upstream),
			fmt.Sprintf("exception.message does not contain the upstream's error message %q", upstream))
		tb.info(5, kind, "exception event attribute keys", sbsEventKeys(aex), sbsEventKeys(lex), "")
		tb.info(5, kind, "outputs", ar.Outputs, lr.Outputs, "")
	}

	// 6. Chat outputs: the whole completion, as autolog keeps it.
	if isChat {
		ao, lo := ar.Outputs, lr.Outputs
		for _, key := range []string{"id", "created", "model", "object", "choices", "usage"} {
			tb.check(6, kind, "outputs has "+key, sbsGet(ao, key) != nil, sbsGet(lo, key) != nil, sbsGet(lo, key) != nil, "outputs lack "+key)
		}
		tb.check(6, kind, "outputs.id == client's", sbsGet(ao, "id"), sbsGet(lo, "id"),
			sbsStr(sbsGet(lo, "id")) != "" && sbsStr(sbsGet(lo, "id")) == sbsStr(client["id"]), "id is not the one the client received")
		tb.info(6, kind, "ids equal across sides", sbsGet(ao, "id"), sbsGet(lo, "id"), fmt.Sprintf("equal=%t (the simulator derives ids from the request)", sbsEqual(sbsGet(ao, "id"), sbsGet(lo, "id"))))
		_, createdOK := sbsNum(sbsGet(lo, "created"))
		tb.check(6, kind, "outputs.created is a number", sbsGet(ao, "created"), sbsGet(lo, "created"), createdOK, "created missing or not a number")
		tb.check(6, kind, "outputs.model", sbsGet(ao, "model"), sbsGet(lo, "model"), sbsEqual(sbsGet(ao, "model"), sbsGet(lo, "model")), "model differs")
		tb.check(6, kind, "outputs.object", sbsGet(ao, "object"), sbsGet(lo, "object"), sbsEqual(sbsGet(ao, "object"), sbsGet(lo, "object")), "object differs")
		if fp := sbsGet(ao, "system_fingerprint"); fp != nil {
			tb.check(6, kind, "outputs.system_fingerprint", fp, sbsGet(lo, "system_fingerprint"), sbsEqual(fp, sbsGet(lo, "system_fingerprint")), "system_fingerprint differs")
		}
		ac0, lc0 := sbsGet(ao, "choices", 0, "message", "content"), sbsGet(lo, "choices", 0, "message", "content")
		tb.check(6, kind, "choices[0].message.content", ac0, lc0,
			sbsEqual(ac0, lc0) && sbsEqual(lc0, client["content"]), "content differs from autolog's or from what the client received")
		tb.check(6, kind, "choices[0].finish_reason", sbsGet(ao, "choices", 0, "finish_reason"), sbsGet(lo, "choices", 0, "finish_reason"),
			sbsEqual(sbsGet(ao, "choices", 0, "finish_reason"), sbsGet(lo, "choices", 0, "finish_reason")), "finish_reason differs")
		au, lu := sbsGet(ao, "usage"), sbsGet(lo, "usage")
		tb.check(6, kind, "usage prompt/completion tokens", au, lu,
			lu != nil && sbsEqual(sbsGet(au, "prompt_tokens"), sbsGet(lu, "prompt_tokens")) && sbsEqual(sbsGet(au, "completion_tokens"), sbsGet(lu, "completion_tokens")),
			"usage missing or differs from autolog's")
		if kind == "tools" {
			atc, ltc := sbsGet(ao, "choices", 0, "message", "tool_calls"), sbsGet(lo, "choices", 0, "message", "tool_calls")
			if atc == nil {
				tb.info(6, kind, "message.tool_calls", atc, ltc, "the simulator answered without tool calls (no tool_calls support yet?)")
			} else {
				tb.check(6, kind, "message.tool_calls (type, name, arguments)", sbsToolCalls(atc), sbsToolCalls(ltc),
					ltc != nil && sbsEqual(sbsToolCalls(atc), sbsToolCalls(ltc)) && sbsEqual(sbsToolCalls(ltc), sbsToolCalls(client["tool_calls"])),
					"tool calls differ from autolog's or from what the client received")
				tb.check(6, kind, "message.tool_calls ids == client's", sbsToolCallIDs(atc), sbsToolCallIDs(ltc),
					len(sbsToolCallIDs(ltc)) > 0 && slices.Equal(sbsToolCallIDs(ltc), sbsToolCallIDs(client["tool_calls"])),
					"tool call ids are not the ones the client received")
				tb.check(6, kind, "message.tool_calls keys", sbsKeys(sbsGet(atc, 0)), sbsKeys(sbsGet(ltc, 0)),
					slices.Equal(sbsKeys(sbsGet(atc, 0)), sbsKeys(sbsGet(ltc, 0))), "a tool call's keys differ from autolog's")
			}
		}
	}

	// 7. Run link.
	if kind == "run" {
		as, ls := ac.Info.TraceMetadata["mlflow.sourceRun"], lc.Info.TraceMetadata["mlflow.sourceRun"]
		tb.check(7, kind, `metadata["mlflow.sourceRun"] == run id`, fmt.Sprintf("%s (run %s)", as, a.RunID), fmt.Sprintf("%s (run %s)", ls, l.RunID),
			l.RunID != "" && ls == l.RunID, "the trace is not linked to the gateway's named run")
		acnt, _, _ := sbsCount(a, "search_run_id")
		lcnt, lerr, _ := sbsCount(l, "search_run_id")
		tb.check(7, kind, "search_traces(run_id=…) count", acnt, lcnt, lcnt != nil && *lcnt == 1, "search_traces(run_id) does not find exactly the run's trace "+lerr)
	}

	// 8. Prompts and answers.
	switch {
	case isChat || kind == "error":
		tb.check(8, kind, "inputs.messages == messages sent", sbsGet(ar.Inputs, "messages"), sbsGet(lr.Inputs, "messages"),
			sent["messages"] != nil && sbsEqual(sbsGet(lr.Inputs, "messages"), sent["messages"]), "inputs do not hold the messages as sent")
	case kind == "embeddings":
		tb.check(8, kind, "inputs.input == input sent", sbsGet(ar.Inputs, "input"), sbsGet(lr.Inputs, "input"),
			sbsEqual(sbsGet(lr.Inputs, "input"), sent["input"]), "inputs do not hold the input as sent")
	}
	for _, key := range sbsKeys(sent) {
		if key == "messages" || key == "input" || key == "tools" || key == "instructions" {
			continue // compared above
		}
		tb.check(8, kind, "inputs."+key, sbsGet(ar.Inputs, key), sbsGet(lr.Inputs, key), sbsEqual(sbsGet(lr.Inputs, key), sent[key]), "inputs do not hold "+key+" as sent")
	}
	prompt := ""
	switch {
	case isChat || kind == "error":
		prompt = sbsLastUser(sent["messages"])
	case isResp:
		prompt = sbsStr(sent["input"])
	}
	arp, lrp := ac.Info.RequestPreview, lc.Info.RequestPreview
	tb.check(8, kind, "request_preview", arp, lrp, lrp != "" && strings.Contains(lrp, prompt),
		fmt.Sprintf("request_preview empty or without the prompt %q", prompt))
	answer := sbsStr(client["content"])
	asp, lsp := ac.Info.ResponsePreview, lc.Info.ResponsePreview
	if kind == "error" {
		tb.info(8, kind, "response_preview", asp, lsp, "autolog has none for an error")
	} else {
		tb.check(8, kind, "response_preview", asp, lsp, lsp != "" && strings.Contains(lsp, sbsPrefix(answer, 30)),
			"response_preview empty or without the answer's start")
	}
	if answer != "" {
		b, _ := json.Marshal(lr.Outputs)
		ab, _ := json.Marshal(ar.Outputs)
		jsonAnswer, _ := json.Marshal(answer)
		inner := string(jsonAnswer[1 : len(jsonAnswer)-1])
		tb.check(8, kind, "outputs hold the answer text", strings.Contains(string(ab), inner), strings.Contains(string(b), inner),
			strings.Contains(string(b), inner), "the answer text is not in the outputs")
	}

	// 9. Streams.
	if isStream {
		aChunks := 0
		for _, e := range ar.Events {
			if strings.HasPrefix(e.Name, "mlflow.chunk.item.") {
				aChunks++
			}
		}
		ttft, _ := sbsNum(lr.Attributes["llmscope.ttft_ms"])
		chunks, _ := sbsNum(lr.Attributes["llmscope.chunks"])
		var lEvents []string
		ttftEvent := false
		for _, e := range lr.Events {
			lEvents = append(lEvents, e.Name)
			n := strings.ToLower(e.Name)
			if strings.Contains(n, "first") || strings.Contains(n, "ttft") {
				ttftEvent = true
			}
		}
		tb.check(9, kind, "TTFT (llmscope.ttft_ms > 0 or event)", "none (autolog records no TTFT)", map[string]any{"llmscope.ttft_ms": lr.Attributes["llmscope.ttft_ms"], "events": lEvents},
			ttft > 0 || ttftEvent, "no TTFT on the root span")
		tb.check(9, kind, "chunk count (llmscope.chunks > 0 or events)", fmt.Sprintf("%d mlflow.chunk.item.N events", aChunks),
			map[string]any{"llmscope.chunks": lr.Attributes["llmscope.chunks"], "events": len(lr.Events)},
			chunks > 0 || len(lr.Events) > 0, "no chunk count on the root span")
		if kind == "chat_stream" {
			tb.check(9, kind, "assembled output is a chat.completion", sbsGet(ar.Outputs, "object"), sbsGet(lr.Outputs, "object"),
				sbsStr(sbsGet(lr.Outputs, "object")) == "chat.completion" && sbsStr(sbsGet(lr.Outputs, "choices", 0, "message", "content")) == answer,
				"the output is not the assembled completion")
		} else {
			tb.check(9, kind, "assembled output is a response", sbsGet(ar.Outputs, "status"), sbsGet(lr.Outputs, "status"),
				sbsStr(sbsGet(lr.Outputs, "object")) == "response" && sbsRespText(lr.Outputs) == answer,
				"the output is not the completed Response")
		}
		if len(ar.Events) > 0 && len(lr.Events) > 0 {
			tb.info(9, kind, "first event attribute keys", sbsEventKeys(&ar.Events[0]), sbsEventKeys(&lr.Events[0]), "")
		}
	}

	// Not asserted: what else each side records.
	tb.info(0, kind, "trace token_usage", ac.Info.TokenUsage, lc.Info.TokenUsage, "")
	tb.info(0, kind, "attr mlflow.chat.tokenUsage", ar.Attributes["mlflow.chat.tokenUsage"], lr.Attributes["mlflow.chat.tokenUsage"], "")
	tb.info(0, kind, "attr mlflow.llm.cost", ar.Attributes["mlflow.llm.cost"], lr.Attributes["mlflow.llm.cost"], "")
	var onlyA, onlyL []string
	for k := range ar.Attributes {
		if _, ok := lr.Attributes[k]; !ok {
			onlyA = append(onlyA, k)
		}
	}
	for k := range lr.Attributes {
		if _, ok := ar.Attributes[k]; !ok {
			onlyL = append(onlyL, k)
		}
	}
	sort.Strings(onlyA)
	sort.Strings(onlyL)
	tb.info(0, kind, "root attributes only on one side", onlyA, onlyL, "")
	tb.info(0, kind, "input keys", sbsKeys(ar.Inputs), sbsKeys(lr.Inputs), "")
	tb.info(0, kind, "output keys", sbsKeys(ar.Outputs), sbsKeys(lr.Outputs), "")
}

func sbsEventNamed(s *sbsSpan, name string) *sbsEvent {
	for i := range s.Events {
		if s.Events[i].Name == name {
			return &s.Events[i]
		}
	}
	return nil
}

func sbsEventKeys(e *sbsEvent) []string {
	if e == nil {
		return nil
	}
	return sbsKeys(map[string]any(e.Attributes))
}

// sbsCompareFilters adds one row per search filter, under the row of the
// brief it belongs to (1 span types, 2 names, 7 run link, 10 the rest); all
// of them are row 10's "same count on both sides".
func sbsCompareFilters(tb *sbsTable, a, l *sbsDoc) {
	// Filters autolog has no data for, and how many of llmscope's calls
	// they must match (-1: all of them).
	llmscopeOnly := map[string]int{"metadata_user": -1, "metadata_session": -1, "tag_suite": -1, "tag_llmscope_run": 1}
	rowOf := func(name string) int {
		switch {
		case strings.HasPrefix(name, "span_type_"):
			return 1
		case strings.HasPrefix(name, "span_name_"), strings.HasPrefix(name, "trace_name_"):
			return 2
		case name == "metadata_source_run", name == "trace_run_id", name == "search_run_id":
			return 7
		}
		return 10
	}
	for _, f := range l.Filters {
		ac, aerr, _ := sbsCount(a, f.Name)
		lc, lerr := f.Count, f.Error
		label := f.Filter
		if l.RunID != "" {
			label = strings.ReplaceAll(label, l.RunID, "<run id>")
		}
		if label == "" {
			label = "(no filter)"
		}
		n := rowOf(f.Name)
		switch {
		case lerr != "" || aerr != "":
			tb.check(n, "filter", label, ac, lc, false, "search failed: "+aerr+" "+lerr)
		case llmscopeOnly[f.Name] != 0 && (ac == nil || *ac == 0):
			want := llmscopeOnly[f.Name]
			if want < 0 {
				want = len(l.Calls)
			}
			tb.check(n, "filter", label, ac, lc, lc != nil && *lc == want,
				fmt.Sprintf("autolog has no data for it; llmscope must match %d calls", want))
			if lc != nil && *lc == want {
				tb.rows[len(tb.rows)-1].why = "autolog has no data for it; llmscope matches the calls that sent it"
			}
		default:
			tb.check(n, "filter", label, ac, lc, ac != nil && lc != nil && *ac == *lc, "counts differ")
		}
	}
}
