package prom

import (
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"llmscope"
)

// Bucket boundaries of the OpenTelemetry GenAI semantic conventions.
var (
	durationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
	tokenBuckets    = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
	// overheadBuckets span 1 µs to about 0.26 s.
	overheadBuckets = prometheus.ExponentialBuckets(1e-6, 4, 10)
)

// OtherModel replaces model names beyond the cap.
const OtherModel = "other"

// DefaultModelCap is how many distinct model label values are kept.
const DefaultModelCap = 100

// MaxLabelLen is the longest model, provider or error type label value kept,
// in bytes; a longer one is recorded as OtherModel (a model counted in
// llmscope_model_label_overflow_total), so one request cannot make every
// scrape megabytes long.
const MaxLabelLen = 128

// genai holds the per-call collectors.
type genai struct {
	duration, tokens, ttft *prometheus.HistogramVec
	requests, tokensTotal  *prometheus.CounterVec
	cost                   *prometheus.CounterVec
	overhead               prometheus.Histogram
	overflow               prometheus.Counter

	cap    int
	mu     sync.RWMutex
	models map[string]struct{}
	series map[seriesKey]*series
}

// seriesKey names one combination of label values.
type seriesKey struct {
	op, provider, model, errType string
	status                       int
}

// series holds the children of one label combination, so recording a call
// of a combination seen before allocates nothing.
type series struct {
	duration, ttft, tokIn, tokOut prometheus.Observer
	requests, cntIn, cntOut, cost prometheus.Counter
}

func newGenAI(modelCap int) *genai {
	if modelCap <= 0 {
		modelCap = DefaultModelCap
	}
	base := []string{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	return &genai{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_client_operation_duration_seconds", Help: "GenAI operation duration.", Buckets: durationBuckets,
		}, with("error_type")),
		tokens: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_client_token_usage", Help: "Number of input and output tokens used per operation.", Buckets: tokenBuckets,
		}, with("gen_ai_token_type")),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_client_operation_time_to_first_chunk_seconds", Help: "Time to the first chunk of a streamed answer.", Buckets: durationBuckets,
		}, base),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmscope_requests_total", Help: "Calls recorded, by outcome.",
		}, with("status_code", "error_type")),
		tokensTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmscope_tokens_total", Help: "Tokens used, by type (input or output).",
		}, with("type")),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmscope_cost_usd_total", Help: "Cost of calls in US dollars (calls with a known price).",
		}, base),
		overhead: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "llmscope_gateway_overhead_seconds", Help: "Time llmscope itself spent on a call.", Buckets: overheadBuckets,
		}),
		overflow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llmscope_model_label_overflow_total", Help: "Calls whose model was recorded as \"other\" because the model label cap was reached or the name was too long.",
		}),
		cap:    modelCap,
		models: map[string]struct{}{},
		series: map[seriesKey]*series{},
	}
}

func (g *genai) collectors() []prometheus.Collector {
	return []prometheus.Collector{g.duration, g.tokens, g.ttft, g.requests, g.tokensTotal, g.cost, g.overhead, g.overflow}
}

// record updates every per-call metric for c.
func (g *genai) record(c *llmscope.Call) {
	s := g.lookup(c)
	s.duration.Observe(c.DurationMS / 1e3)
	s.requests.Inc()
	if c.Stream && c.TTFTMS > 0 {
		s.ttft.Observe(c.TTFTMS / 1e3)
	}
	if c.Usage.Source != llmscope.UsageNone && c.Usage.Source != "" {
		s.tokIn.Observe(float64(c.Usage.InputTokens))
		s.cntIn.Add(float64(c.Usage.InputTokens))
		if c.Operation != llmscope.OpEmbeddings {
			s.tokOut.Observe(float64(c.Usage.OutputTokens))
			s.cntOut.Add(float64(c.Usage.OutputTokens))
		}
	}
	if c.Cost != nil {
		s.cost.Add(c.Cost.TotalUSD)
	}
	g.overhead.Observe(c.OverheadMS / 1e3)
}

// lookup returns the series of c's labels, creating it on first use. The
// model label is capped: past the cap, new models are recorded as "other",
// so a client sending random model names cannot grow memory or series.
func (g *genai) lookup(c *llmscope.Call) *series {
	key := seriesKey{op: c.Operation, provider: c.Provider, model: c.RequestModel, errType: c.ErrorType, status: c.Status}
	if key.model == "" {
		key.model = c.ResponseModel
	}
	// Label values must be valid UTF-8 (a request can name any bytes) and
	// short.
	tooLong := len(key.model) > MaxLabelLen
	key.model = label(key.model)
	key.provider = label(key.provider)
	key.errType = label(key.errType)
	// Only a call that succeeded may take a place under the cap, so made-up
	// model names that the upstream refuses cannot crowd real models out.
	admit := c.Status < 400 && c.ErrorType == ""
	g.mu.RLock()
	if _, known := g.models[key.model]; tooLong || !known && (len(g.models) >= g.cap || !admit) {
		key.model = OtherModel
		g.overflow.Inc()
	}
	s, ok := g.series[key]
	g.mu.RUnlock()
	if ok {
		return s
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, known := g.models[key.model]; !known && key.model != OtherModel {
		if len(g.models) < g.cap {
			g.models[key.model] = struct{}{}
		} else {
			key.model = OtherModel
			g.overflow.Inc()
		}
	}
	if s, ok := g.series[key]; ok {
		return s
	}
	label := key.model
	status := strconv.Itoa(key.status)
	s = &series{
		duration: g.duration.WithLabelValues(key.op, key.provider, label, key.errType),
		ttft:     g.ttft.WithLabelValues(key.op, key.provider, label),
		tokIn:    g.tokens.WithLabelValues(key.op, key.provider, label, "input"),
		tokOut:   g.tokens.WithLabelValues(key.op, key.provider, label, "output"),
		requests: g.requests.WithLabelValues(key.op, key.provider, label, status, key.errType),
		cntIn:    g.tokensTotal.WithLabelValues(key.op, key.provider, label, "input"),
		cntOut:   g.tokensTotal.WithLabelValues(key.op, key.provider, label, "output"),
		cost:     g.cost.WithLabelValues(key.op, key.provider, label),
	}
	g.series[key] = s
	return s
}

// label returns v as a label value: OtherModel when longer than
// MaxLabelLen, else v with invalid UTF-8 replaced.
func label(v string) string {
	if len(v) > MaxLabelLen {
		return OtherModel
	}
	return strings.ToValidUTF8(v, "\uFFFD")
}
