package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"llmscope"
	"llmscope/sqlite"
	"llmscope/web"
)

func TestParseFilter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	q, _ := url.ParseQuery("limit=7&model=m&run=r&experiment=e&since=1h&until=2026-01-02T03:00:00Z")
	f, err := web.ParseFilter(q, now)
	if err != nil {
		t.Fatal(err)
	}
	want := llmscope.Filter{Limit: 7, Model: "m", Run: "r", Experiment: "e", Since: now.Add(-time.Hour), Until: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}
	if f != want {
		t.Errorf("ParseFilter = %+v, want %+v", f, want)
	}
	for _, bad := range []string{"limit=-1", "limit=x", "limit=10001", "since=yesterday", "until=5"} {
		q, _ := url.ParseQuery(bad)
		if _, err := web.ParseFilter(q, now); err == nil {
			t.Errorf("ParseFilter(%s) accepted", bad)
		}
	}
}

func TestAPI(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	start := time.Now().Add(-time.Minute)
	var calls []*llmscope.Call
	for i := range 10 {
		model := "a"
		if i%3 == 0 {
			model = "b"
		}
		calls = append(calls, &llmscope.Call{ID: llmscope.NewID(), Start: start.Add(time.Duration(i) * time.Second), Operation: "chat",
			RequestModel: model, Status: 200, DurationMS: float64(10 * (i + 1)), Usage: llmscope.Usage{InputTokens: int64(i), OutputTokens: 2, TotalTokens: int64(i) + 2}})
	}
	calls[9].Status, calls[9].ErrorType = 500, "500"
	if err := store.Write(ctx, calls); err != nil {
		t.Fatal(err)
	}
	healthy := errors.New("exporter down")
	srv := httptest.NewServer(web.New(store, map[string]web.Health{"mlflow": func() error { return healthy }}, nil))
	defer srv.Close()

	get := func(path string, want int, v any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
		if v != nil {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	var stats llmscope.Stats
	get("/api/stats?group_by=model", 200, &stats)
	if stats.Totals.Calls != 10 || stats.Totals.Errors != 1 || stats.Totals.InputTokens != 45 || stats.Totals.LatencyP50MS != 50 {
		t.Errorf("totals %+v", stats.Totals)
	}
	if len(stats.Groups) != 2 || stats.Groups[0].Key != "a" || stats.Groups[0].Calls != 6 {
		t.Errorf("groups %+v", stats.Groups)
	}
	var list struct{ Calls []llmscope.Call }
	get("/api/calls?model=b&limit=2", 200, &list)
	if len(list.Calls) != 2 || list.Calls[0].ID != calls[9].ID || list.Calls[1].ID != calls[6].ID {
		t.Errorf("list = %+v", list.Calls)
	}
	get("/api/stats?group_by=colour", 400, nil) // not a key calls are grouped by
	var health struct {
		Status string
		Checks map[string]string
	}
	get("/healthz", 503, &health)
	if health.Status != "degraded" || health.Checks["mlflow"] != "exporter down" {
		t.Errorf("healthz = %+v", health)
	}
	healthy = nil
	get("/healthz", 200, &health)
}

// textOf returns n bytes of text, different for each seed.
func textOf(seed, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte((i+seed)%26)
	}
	return string(b)
}

// serve answers one request to h from memory.
func serve(h http.Handler, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}

type listAnswer struct {
	Calls []llmscope.Call `json:"calls"`
	Next  *string         `json:"next"`
}

func decodeList(t *testing.T, w *httptest.ResponseRecorder) listAnswer {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var a listAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// TestListCallsWithoutTexts: 2000 calls with 60 KB of captured input each
// are listed in well under 2 MB, without their texts, unless text=true;
// one call still has them. Past the size bound, text=true pages end early
// with a cursor that continues where they stopped.
func TestListCallsWithoutTexts(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var all []*llmscope.Call
	for i := range 2000 {
		all = append(all, &llmscope.Call{ID: llmscope.NewID(), Start: start.Add(time.Duration(i) * time.Millisecond), Operation: "chat",
			RequestModel: "m", Status: 200, Input: textOf(i, 60<<10), Output: textOf(i+1, 100)})
	}
	for i := 0; i < len(all); i += 250 {
		if err := store.Write(ctx, all[i:i+250]); err != nil {
			t.Fatal(err)
		}
	}
	h := web.New(store, nil, nil)

	w := serve(h, "/api/calls?limit=2000")
	if w.Body.Len() >= 2<<20 {
		t.Errorf("2000 calls listed in %d bytes", w.Body.Len())
	}
	a := decodeList(t, w)
	if len(a.Calls) != 2000 || a.Next != nil {
		t.Fatalf("%d calls, next %v", len(a.Calls), a.Next)
	}
	for _, c := range a.Calls {
		if c.Input != "" || c.Output != "" {
			t.Fatalf("call %s listed with %d bytes of input, %d of output", c.ID, len(c.Input), len(c.Output))
		}
	}
	var one llmscope.Call
	if err := json.Unmarshal(serve(h, "/api/calls/"+all[7].ID).Body.Bytes(), &one); err != nil || one.Input != all[7].Input {
		t.Errorf("GET /api/calls/{id}: input %d bytes, err %v", len(one.Input), err)
	}
	if a := decodeList(t, serve(h, "/api/calls?limit=3&text=true")); len(a.Calls) != 3 || a.Calls[0].Input != all[1999].Input || a.Calls[2].Output != all[1997].Output {
		t.Errorf("text=true: %d calls without the texts", len(a.Calls))
	}

	// text=true: 2000 × 60 KB cannot fit one answer.
	w = serve(h, "/api/calls?limit=2000&text=true")
	first := decodeList(t, w)
	if w.Body.Len() > web.MaxListBytes+70<<10 || first.Next == nil || len(first.Calls) == 0 || len(first.Calls) >= 2000 {
		t.Fatalf("text=true page: %d bytes, %d calls, next %v", w.Body.Len(), len(first.Calls), first.Next)
	}
	w = serve(h, "/api/calls?limit=2000&text=true&cursor="+url.QueryEscape(*first.Next))
	second := decodeList(t, w)
	if w.Body.Len() > web.MaxListBytes+70<<10 || len(second.Calls) == 0 {
		t.Fatalf("second text=true page: %d bytes, %d calls", w.Body.Len(), len(second.Calls))
	}
	n := len(first.Calls)
	if first.Calls[n-1].ID != all[2000-n].ID || second.Calls[0].ID != all[2000-n-1].ID || second.Calls[0].Input != all[2000-n-1].Input {
		t.Errorf("the second page does not continue the first (%d calls on the first)", n)
	}
}

// TestListCallsCursor: limit 40 over 250 calls, many with equal start
// times, visits each once in order; next appears only while more match;
// a cursor that is not one the API gave is a 400.
func TestListCallsCursor(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var all []*llmscope.Call
	for i := range 250 {
		all = append(all, &llmscope.Call{ID: llmscope.NewID(), Start: start.Add(time.Duration(i/10) * time.Second), Operation: "chat",
			RequestModel: "m", Status: 200})
	}
	all = append(all, &llmscope.Call{ID: llmscope.NewID(), Start: start, Operation: "chat", RequestModel: "other", Status: 200})
	if err := store.Write(ctx, all); err != nil {
		t.Fatal(err)
	}
	h := web.New(store, nil, nil)
	seen := map[string]int{}
	var order []llmscope.Call
	target := "/api/calls?model=m&limit=40"
	for pages := 1; ; pages++ {
		a := decodeList(t, serve(h, target))
		for _, c := range a.Calls {
			seen[c.ID]++
			order = append(order, c)
		}
		if a.Next == nil {
			if pages != 7 || len(a.Calls) != 10 {
				t.Errorf("the walk ended on page %d with %d calls", pages, len(a.Calls))
			}
			break
		}
		if pages > 10 {
			t.Fatal("the walk does not end")
		}
		target = "/api/calls?model=m&limit=40&cursor=" + url.QueryEscape(*a.Next)
	}
	if len(seen) != 250 || len(order) != 250 {
		t.Errorf("visited %d distinct calls in %d rows, want 250", len(seen), len(order))
	}
	for i := 1; i < len(order); i++ {
		a, b := order[i-1], order[i]
		if a.Start.Before(b.Start) || a.Start.Equal(b.Start) && a.ID <= b.ID {
			t.Fatalf("rows %d and %d out of order", i-1, i)
		}
	}
	if a := decodeList(t, serve(h, "/api/calls?model=m&limit=250")); len(a.Calls) != 250 || a.Next != nil {
		t.Errorf("all 250 in one page: %d calls, next %v", len(a.Calls), a.Next)
	}
	if a := decodeList(t, serve(h, "/api/calls?model=m&limit=249")); len(a.Calls) != 249 || a.Next == nil {
		t.Errorf("249 of 250: %d calls, next %v", len(a.Calls), a.Next)
	}
	for _, bad := range []string{"!!", "eA", "MTIz", "eCB5", "text=maybe"} {
		target := "/api/calls?cursor=" + bad
		if bad == "text=maybe" {
			target = "/api/calls?" + bad
		}
		if w := serve(h, target); w.Code != http.StatusBadRequest || !json.Valid(w.Body.Bytes()) {
			t.Errorf("%s: %d %s", target, w.Code, w.Body)
		}
	}
}

// failingStore fails every read with an error naming internals.
type failingStore struct{ llmscope.Store }

var errInternal = errors.New("disk I/O error at /var/lib/secret/llmscope.db")

func (failingStore) List(context.Context, llmscope.Filter) ([]*llmscope.Call, error) {
	return nil, errInternal
}

func (failingStore) Stats(context.Context, llmscope.Filter) (*llmscope.Stats, error) {
	return nil, errInternal
}

// TestStoreErrorsStayInTheLog: a 500 names what failed, not the store's error.
func TestStoreErrorsStayInTheLog(t *testing.T) {
	h := web.New(failingStore{openStore(t)}, nil, nil)
	for target, msg := range map[string]string{"/api/calls": "list calls failed", "/api/stats": "stats failed"} {
		w := serve(h, target)
		var body struct{ Error struct{ Message string } }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 500 || body.Error.Message != msg {
			t.Errorf("%s: %d %s", target, w.Code, w.Body)
		}
	}
}
