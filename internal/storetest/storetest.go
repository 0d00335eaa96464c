// Package storetest is the contract suite every llmscope.Store must pass. A
// backend's tests call Run with a function that opens a new, empty store; the
// same cases then run against SQLite, Postgres and any later backend.
//
// What it holds a store to, beyond the comments on llmscope.Store:
//   - a Call reads back reflect.DeepEqual to what was written, once both
//     Starts are in UTC: nanosecond times, every Params pointer (a pointer to
//     zero stays set), a nil Tags map or Stop list stays nil, a nil Cost stays
//     nil and a zero Cost stays non-nil;
//   - List orders by Start descending, then by id descending in byte order
//     (Postgres needs COLLATE "C" for that);
//   - Stats follows expectStats, the reference implementation in this package;
//   - a store that implements llmscope.Pruner deletes exactly what its
//     comment says (the Prune cases; skipped for other stores).
//
// Strings are valid UTF-8 without NUL bytes here; backends that can store
// any bytes test that themselves.
//
// Expected values are always computed here, independently, from the calls the
// suite wrote; nothing is read back from the store to build an expectation.
package storetest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"llmscope"
)

// Run runs the Store contract as subtests of t. open must return a new, empty
// store each time it is called; Run closes it when the subtest ends (so open
// may register its own Close too, as long as closing twice is harmless).
func Run(t *testing.T, open func(t *testing.T) llmscope.Store) {
	t.Helper()
	cases := []struct {
		name string
		fn   func(t *testing.T, s llmscope.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"RoundTripMinimal", testRoundTripMinimal},
		{"CostNil", testCostNil},
		{"GetNotFound", testGetNotFound},
		{"WriteIdempotent", testWriteIdempotent},
		{"WriteEmpty", testWriteEmpty},
		{"ListOrder", testListOrder},
		{"ListLimit", testListLimit},
		{"ListFilter", testListFilter},
		{"ListPages", testListPages},
		{"ListOmitText", testListOmitText},
		{"Stats", testStats},
		{"StatsFilter", testStatsFilter},
		{"StatsEmpty", testStatsEmpty},
		{"ConcurrentWrites", testConcurrentWrites},
		{"LargeBatch", testLargeBatch},
		{"Outbox", testOutbox},
		{"Cursor", testCursor},
		{"PruneCutoff", testPruneCutoff},
		{"PruneLimit", testPruneLimit},
		{"PruneKeepsUndelivered", testPruneKeepsUndelivered},
		{"PruneThenWrite", testPruneThenWrite},
		{"PruneWhileWriting", testPruneWhileWriting},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			c.fn(t, s)
		})
	}
}

// fullCall returns a call with every field (and every Params field) set to a
// non-zero value, with values chosen to catch lossy storage: nanosecond
// times in a non-UTC zone, floats that need all 17 digits, int64s beyond 32
// bits, a pointer to zero (sent, but zero), quotes and non-ASCII text.
func fullCall() *llmscope.Call {
	return &llmscope.Call{
		ID:            "0193b6a2-7c1e-7abc-8def-0123456789ab",
		TraceID:       "0193b6a27c1e7abc8def0123456789ab",
		Start:         time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("IST", 5*3600+1800)),
		DurationMS:    812.4 + 1.0/3.0,
		TTFTMS:        143.2,
		Operation:     llmscope.OpChat,
		Provider:      "openai",
		Endpoint:      "/v1/chat/completions",
		RequestModel:  "gpt-4o-mini",
		ResponseModel: "gpt-4o-mini-2024-07-18",
		Stream:        true,
		Status:        200,
		ErrorType:     llmscope.ErrTypeStream,
		FinishReason:  "length",
		Params: llmscope.Params{
			Temperature:         new(0.0),
			TopP:                new(0.95),
			MaxTokens:           new(int64(256)),
			MaxCompletionTokens: new(int64(1024)),
			MaxOutputTokens:     new(int64(2048)),
			N:                   new(int64(2)),
			Seed:                new(int64(math.MaxInt64 - 7)),
			Stop:                []string{"\n\n", "END", `"quoted"`},
			PresencePenalty:     new(-0.5),
			FrequencyPenalty:    new(0.1 + 0.2),
			ResponseFormat:      "json_schema",
			Tools:               new(int64(3)),
			ToolChoice:          "get_weather",
			ParallelToolCalls:   new(false),
			ReasoningEffort:     "high",
			Logprobs:            new(true),
			TopLogprobs:         new(int64(5)),
			User:                "end-user-1",
			Dimensions:          new(int64(1536)),
			EncodingFormat:      "base64",
			ServiceTier:         "flex",
			IncludeUsage:        new(true),
		},
		Usage: llmscope.Usage{
			InputTokens:              1<<33 + 21,
			OutputTokens:             87,
			TotalTokens:              1<<33 + 108,
			CachedInputTokens:        16,
			CacheCreationInputTokens: 9,
			ReasoningTokens:          40,
			Source:                   llmscope.UsageReported,
		},
		Cost: &llmscope.Cost{
			InputUSD:    1.0 / 3.0,
			OutputUSD:   0.0000522,
			TotalUSD:    1.0/3.0 + 0.0000522,
			PriceSource: "openai-2025-01-01",
		},
		Experiment: "exp-α",
		Run:        "run 1",
		User:       "user-42",
		Session:    "sess-7",
		Key:        "ci-bot",
		Team:       "search",
		Tags:       map[string]string{"team": "search", "quote": `it's "quoted"`, "empty": "", "ключ": "значение"},
		OverheadMS: 0.1 + 0.2,
		Input:      `[{"role":"system","content":"Be brief."},{"role":"user","content":"héllo 👋\nworld"}]`,
		Output:     "Hello! 'single' \"double\"; DROP TABLE calls; --\r\n\ttabbed",
		Tools:      `[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`,
		ToolCalls:  `[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Zürich\"}"}}]`,

		ResponseID:        "chatcmpl-ABC'123",
		ResponseCreated:   1_700_000_000,
		SystemFingerprint: "fp_44709d6fcb",
		Chunks:            42,
		ErrorCode:         "rate_limit_exceeded",
		ErrorMessage:      "Rate limit reached for gpt-4o-mini: \"quoted\" 'single' 👋",
		Upstream:          "azure-east",
		Attempts:          3,
		ServiceTier:       "priority",
		Deployment:        "prod-4o",
		Tries: []llmscope.Try{
			{Upstream: "openai-main", Start: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), DurationMS: 12.5, Status: 429, Outcome: "status", Retried: true},
			{Upstream: "azure-east", Start: time.Date(2025, 1, 2, 3, 4, 5, 20_000_006, time.UTC), DurationMS: 1.25, Status: 200, Outcome: "ok"},
		},
	}
}

// assertAllSet fails when any field reachable from v is its zero value, so a
// field added to Call or Params later cannot silently escape the round trip.
func assertAllSet(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			t.Errorf("fixture leaves %s unset", path)
			return
		}
		if v.Elem().Kind() == reflect.Struct {
			assertAllSet(t, v.Elem(), path) // a pointer to a scalar zero is set: sent as zero
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			if v.Interface().(time.Time).IsZero() {
				t.Errorf("fixture leaves %s unset", path)
			}
			return
		}
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.Tag.Get("json") != "-" { // Seq is the store's to set
				assertAllSet(t, v.Field(i), path+"."+f.Name)
			}
		}
	default:
		if v.Kind() == reflect.Bool {
			return // a bool's zero is as meaningful as true; Stream is true in the fixture
		}
		if v.IsZero() || ((v.Kind() == reflect.Slice || v.Kind() == reflect.Map) && v.Len() == 0) {
			t.Errorf("fixture leaves %s unset", path)
		}
	}
}

// normalize returns a copy of c with Start in UTC (which also drops any
// monotonic clock reading), the only change a store is allowed to make.
func normalize(c *llmscope.Call) *llmscope.Call {
	if c == nil {
		return nil
	}
	n := *c
	n.Start = n.Start.UTC()
	return &n
}

func assertSameCall(t *testing.T, label string, got, want *llmscope.Call) {
	t.Helper()
	g, w := normalize(got), normalize(want)
	if reflect.DeepEqual(g, w) {
		return
	}
	if g == nil || w == nil {
		t.Errorf("%s: got %v, want %v", label, g, w)
		return
	}
	gv, wv := reflect.ValueOf(*g), reflect.ValueOf(*w)
	for i := range gv.NumField() {
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			t.Errorf("%s: field %s differs:\n got  %s\n want %s", label, gv.Type().Field(i).Name,
				describe(gv.Field(i)), describe(wv.Field(i)))
		}
	}
}

// describe formats v, following pointers so that differences are visible.
func describe(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return "nil"
		}
		return "&" + describe(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return fmt.Sprintf("%v", v.Interface())
		}
		var b strings.Builder
		b.WriteString("{")
		for i := range v.NumField() {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%s:%s", v.Type().Field(i).Name, describe(v.Field(i)))
		}
		b.WriteString("}")
		return b.String()
	default:
		return fmt.Sprintf("%#v", v.Interface())
	}
}

func write(t *testing.T, s llmscope.Store, calls ...*llmscope.Call) {
	t.Helper()
	if err := s.Write(t.Context(), calls); err != nil {
		t.Fatalf("Write(%d calls): %v", len(calls), err)
	}
}

func get(t *testing.T, s llmscope.Store, id string) *llmscope.Call {
	t.Helper()
	c, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return c
}

func list(t *testing.T, s llmscope.Store, f llmscope.Filter) []*llmscope.Call {
	t.Helper()
	calls, err := s.List(t.Context(), f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	return calls
}

func testRoundTrip(t *testing.T, s llmscope.Store) {
	want := fullCall()
	assertAllSet(t, reflect.ValueOf(want), "Call")
	write(t, s, want)
	assertSameCall(t, "Get", get(t, s, want.ID), want)

	got := list(t, s, llmscope.Filter{})
	if len(got) != 1 {
		t.Fatalf("List returned %d calls, want 1", len(got))
	}
	assertSameCall(t, "List", got[0], want)

	// A call from time.Now carries a monotonic reading and the local zone.
	now := fullCall()
	now.ID = "now"
	now.Start = time.Now()
	write(t, s, now)
	assertSameCall(t, "Get(now)", get(t, s, now.ID), now)
}

func testRoundTripMinimal(t *testing.T, s llmscope.Store) {
	// Nothing but an id and a time: nil tags, nil stop list, no params, no
	// cost, empty strings. All of it must come back exactly so.
	want := &llmscope.Call{ID: "minimal", Start: time.Unix(0, 1).UTC()}
	write(t, s, want)
	assertSameCall(t, "Get", get(t, s, want.ID), want)
}

func testCostNil(t *testing.T, s llmscope.Store) {
	unknown := fullCall()
	unknown.ID = "cost-unknown"
	unknown.Cost = nil
	free := fullCall()
	free.ID = "cost-free"
	free.Cost = &llmscope.Cost{PriceSource: "free"}
	zero := fullCall()
	zero.ID = "cost-zero"
	zero.Cost = &llmscope.Cost{}
	write(t, s, unknown, free, zero)

	if got := get(t, s, unknown.ID); got.Cost != nil {
		t.Errorf("unknown cost came back as %+v, want nil", *got.Cost)
	}
	for _, want := range []*llmscope.Call{unknown, free, zero} {
		assertSameCall(t, want.ID, get(t, s, want.ID), want)
	}
}

func testGetNotFound(t *testing.T, s llmscope.Store) {
	check := func() {
		t.Helper()
		c, err := s.Get(t.Context(), "no-such-call")
		if !errors.Is(err, llmscope.ErrNotFound) {
			t.Errorf("Get(unknown) = %v, %v; want an error matching llmscope.ErrNotFound", c, err)
		}
	}
	check()
	write(t, s, fullCall())
	check()
}

func testWriteIdempotent(t *testing.T, s llmscope.Store) {
	base := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	a := sequence("a", 1, base)[0]
	write(t, s, a)

	// The same id again, with different content: ignored, not an error.
	a2 := *a
	a2.RequestModel = "other-model"
	a2.DurationMS = 1
	write(t, s, &a2)
	assertSameCall(t, "after rewrite", get(t, s, a.ID), a)

	// Duplicates inside one batch: the first occurrence is kept.
	bc := sequence("b", 2, base.Add(time.Second))
	b2 := *bc[0]
	b2.Run = "second"
	write(t, s, bc[0], &b2, bc[1])
	assertSameCall(t, "duplicate in batch", get(t, s, bc[0].ID), bc[0])

	// A retried batch (what the Recorder does after a failure) adds nothing.
	write(t, s, a, bc[0], bc[1])
	write(t, s, a, bc[0], bc[1])
	got := list(t, s, llmscope.Filter{Limit: 1000})
	assertIDs(t, "List after retries", got, []*llmscope.Call{bc[1], bc[0], a})
}

func testWriteEmpty(t *testing.T, s llmscope.Store) {
	if err := s.Write(t.Context(), nil); err != nil {
		t.Errorf("Write(nil) = %v", err)
	}
	if err := s.Write(t.Context(), []*llmscope.Call{}); err != nil {
		t.Errorf("Write(empty) = %v", err)
	}
	if got := list(t, s, llmscope.Filter{}); len(got) != 0 {
		t.Errorf("List after empty writes returned %d calls", len(got))
	}
}

// sequence returns n small calls named prefix-00000…, one millisecond apart
// from start.
func sequence(prefix string, n int, start time.Time) []*llmscope.Call {
	calls := make([]*llmscope.Call, n)
	for i := range calls {
		calls[i] = &llmscope.Call{
			ID:            fmt.Sprintf("%s-%05d", prefix, i),
			Start:         start.Add(time.Duration(i) * time.Millisecond),
			DurationMS:    float64(i%97) + 0.5,
			Operation:     llmscope.OpChat,
			Provider:      "openai",
			Endpoint:      "/v1/chat/completions",
			RequestModel:  "gpt-4o-mini",
			ResponseModel: "gpt-4o-mini-2024-07-18",
			Status:        200,
			Usage:         llmscope.Usage{InputTokens: 10, OutputTokens: int64(i), TotalTokens: 10 + int64(i), Source: llmscope.UsageReported},
			Cost:          &llmscope.Cost{InputUSD: 1e-6, OutputUSD: 2e-6, TotalUSD: 3e-6, PriceSource: "test"},
			Experiment:    "llmscope",
		}
	}
	return calls
}

// newestFirst sorts calls the way List must: Start descending, then id
// descending (byte order).
func newestFirst(calls []*llmscope.Call) []*llmscope.Call {
	out := slices.Clone(calls)
	slices.SortStableFunc(out, func(a, b *llmscope.Call) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out
}

func ids(calls []*llmscope.Call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.ID
	}
	return out
}

func assertIDs(t *testing.T, label string, got, want []*llmscope.Call) {
	t.Helper()
	g, w := ids(got), ids(want)
	if !slices.Equal(g, w) {
		t.Errorf("%s: got %d calls %v\nwant %d calls %v", label, len(g), abbreviate(g), len(w), abbreviate(w))
	}
}

func abbreviate(ids []string) []string {
	if len(ids) <= 12 {
		return ids
	}
	return append(slices.Clip(ids[:6]), append([]string{"…"}, ids[len(ids)-6:]...)...)
}

// shuffledBatches writes calls in a random order, in batches of varying size,
// so that insertion order says nothing about the expected order.
func shuffledBatches(t *testing.T, s llmscope.Store, rng *rand.Rand, calls []*llmscope.Call) {
	t.Helper()
	order := slices.Clone(calls)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for len(order) > 0 {
		n := min(1+rng.IntN(17), len(order))
		write(t, s, order[:n]...)
		order = order[n:]
	}
}

func testListOrder(t *testing.T, s llmscope.Store) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	zones := []*time.Location{time.UTC, time.FixedZone("A", -7*3600), time.FixedZone("B", 9*3600+1800)}
	var calls []*llmscope.Call
	for i := range 60 {
		c := sequence("ord", 1, base)[0]
		c.ID = fmt.Sprintf("ord-%02d", i)
		// Ticks 1ns apart, several calls per tick (ties broken by id), and
		// the same instant spelled in different zones.
		c.Start = base.Add(time.Duration(rng.IntN(20))).In(zones[i%len(zones)])
		calls = append(calls, c)
	}
	shuffledBatches(t, s, rng, calls)
	assertIDs(t, "List", list(t, s, llmscope.Filter{Limit: 1000}), newestFirst(calls))
}

func testListLimit(t *testing.T, s llmscope.Store) {
	calls := sequence("lim", 150, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	shuffledBatches(t, s, rand.New(rand.NewPCG(3, 4)), calls)
	want := newestFirst(calls)
	assertIDs(t, "default limit", list(t, s, llmscope.Filter{}), want[:llmscope.DefaultLimit])
	assertIDs(t, "Limit 7", list(t, s, llmscope.Filter{Limit: 7}), want[:7])
	assertIDs(t, "Limit 1", list(t, s, llmscope.Filter{Limit: 1}), want[:1])
	assertIDs(t, "Limit 149", list(t, s, llmscope.Filter{Limit: 149}), want[:149])
	assertIDs(t, "Limit 1000", list(t, s, llmscope.Filter{Limit: 1000}), want)
}

// filterData returns calls spread over models (some with only a response
// model), runs, experiments, operations and one-second steps of time.
func filterData() []*llmscope.Call {
	base := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	reqModels := []string{"gpt-4o", "gpt-4o-mini", ""}
	runs := []string{"", "r1", "r2", "r1"}
	ops := []string{llmscope.OpChat, llmscope.OpEmbeddings, llmscope.OpResponses, llmscope.OpChat, llmscope.OpTextCompletion}
	calls := make([]*llmscope.Call, 90)
	for i := range calls {
		c := sequence("flt", 1, base)[0]
		c.ID = fmt.Sprintf("flt-%03d", i)
		c.Start = base.Add(time.Duration(i*7%90) * time.Second).Add(time.Duration(i % 3)) // scrambled, some 1ns apart
		c.RequestModel = reqModels[i%3]
		if c.RequestModel == "" {
			c.ResponseModel = "gpt-4o" // only the response names it
		} else {
			c.ResponseModel = c.RequestModel + "-2024-08-06"
		}
		c.Run = runs[i%4]
		c.Experiment = "default"
		if i%5 == 0 {
			c.Experiment = "sweep"
		}
		c.Operation = ops[i%5]
		calls[i] = c
	}
	return calls
}

// matches is the reference implementation of Filter (without Limit).
func matches(f llmscope.Filter, c *llmscope.Call) bool {
	return (f.Since.IsZero() || !c.Start.Before(f.Since)) &&
		(f.Until.IsZero() || c.Start.Before(f.Until)) &&
		(f.Model == "" || c.RequestModel == f.Model || c.ResponseModel == f.Model) &&
		(f.Run == "" || f.NoRun || c.Run == f.Run) &&
		(!f.NoRun || c.Run == "") &&
		(f.Experiment == "" || c.Experiment == f.Experiment) &&
		(f.Operation == "" || c.Operation == f.Operation) &&
		(f.Before == nil || after(c, *f.Before))
}

// after reports whether c comes after p in List's order: an older start,
// or the same start and a smaller id.
func after(c *llmscope.Call, p llmscope.Position) bool {
	if d := c.Start.Compare(p.Start); d != 0 {
		return d < 0
	}
	return c.ID < p.ID
}

func selectCalls(f llmscope.Filter, calls []*llmscope.Call) []*llmscope.Call {
	var out []*llmscope.Call
	for _, c := range calls {
		if matches(f, c) {
			out = append(out, c)
		}
	}
	return out
}

// filterCases are the filters both List and Stats are checked against. Since
// and Until fall exactly on a call's start (in another zone), to pin down
// inclusive and exclusive bounds.
func filterCases(calls []*llmscope.Call) map[string]llmscope.Filter {
	ist := time.FixedZone("IST", 5*3600+1800)
	edge := calls[41].Start.In(ist)
	later := calls[77].Start.In(ist)
	return map[string]llmscope.Filter{
		"none":              {},
		"since":             {Since: edge},
		"until":             {Until: edge},
		"since until":       {Since: edge, Until: later},
		"since 1ns after":   {Since: edge.Add(1)},
		"until 1ns after":   {Until: edge.Add(1)},
		"model request":     {Model: "gpt-4o-mini"},
		"model either":      {Model: "gpt-4o"},
		"model response":    {Model: "gpt-4o-mini-2024-08-06"},
		"model no prefix":   {Model: "gpt-4"},
		"run":               {Run: "r1"},
		"no run":            {NoRun: true},
		"no run wins":       {NoRun: true, Run: "r1"},
		"experiment":        {Experiment: "sweep"},
		"operation":         {Operation: llmscope.OpEmbeddings},
		"all fields":        {Since: edge.Add(-40 * time.Second), Until: later, Model: "gpt-4o", Run: "r1", Experiment: "default", Operation: llmscope.OpChat},
		"nothing matches":   {Run: "no-such-run"},
		"injection attempt": {Model: "x' OR '1'='1"},
	}
}

func testListFilter(t *testing.T, s llmscope.Store) {
	calls := filterData()
	shuffledBatches(t, s, rand.New(rand.NewPCG(5, 6)), calls)
	for name, f := range filterCases(calls) {
		want := newestFirst(selectCalls(f, calls))
		if name != "nothing matches" && name != "injection attempt" && name != "model no prefix" && len(want) == 0 {
			t.Fatalf("%s: test data selects nothing; the case proves nothing", name)
		}
		f.Limit = 1000
		assertIDs(t, name, list(t, s, f), want)
		f.Limit = 3
		assertIDs(t, name+" limit 3", list(t, s, f), want[:min(3, len(want))])
	}
}

func testConcurrentWrites(t *testing.T, s llmscope.Store) {
	const writers, perWriter = 8, 50
	base := time.Now()
	var (
		wg  sync.WaitGroup
		all = make([][]*llmscope.Call, writers)
	)
	for w := range writers {
		all[w] = sequence(fmt.Sprintf("w%d", w), perWriter, base)
		wg.Go(func() {
			for _, c := range all[w] {
				if err := s.Write(t.Context(), []*llmscope.Call{c}); err != nil {
					t.Errorf("writer %d: Write(%s): %v", w, c.ID, err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := newestFirst(slices.Concat(all...))
	assertIDs(t, "List", list(t, s, llmscope.Filter{Limit: 10 * writers * perWriter}), want)
	st, err := s.Stats(t.Context(), llmscope.Filter{})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.Totals.Calls != writers*perWriter {
		t.Errorf("Stats counts %d calls, want %d", st.Totals.Calls, writers*perWriter)
	}
}

func testLargeBatch(t *testing.T, s llmscope.Store) {
	calls := sequence("big", 1000, time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC))
	for i, c := range calls {
		if i%3 == 0 {
			c.Cost = nil
		}
		c.Tags = map[string]string{"i": fmt.Sprint(i)}
		c.Input = strings.Repeat("x", i)
	}
	write(t, s, calls...)
	assertIDs(t, "List", list(t, s, llmscope.Filter{Limit: 5000}), newestFirst(calls))
	for _, i := range []int{0, 1, 499, 998, 999} {
		assertSameCall(t, calls[i].ID, get(t, s, calls[i].ID), calls[i])
	}
	st, err := s.Stats(t.Context(), llmscope.Filter{})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	assertStats(t, "Stats", st, expectStats(calls))
}
