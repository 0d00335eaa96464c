package llmscope

import (
	"context"
	"time"
)

// Store keeps calls durably. Implementations are safe for concurrent use.
type Store interface {
	// Write stores calls durably; it returns only after they are committed.
	// Writing a call whose id is already stored replaces nothing and is not
	// an error, so a retried batch never duplicates.
	Write(ctx context.Context, calls []*Call) error
	// Get returns the call with the given id, or ErrNotFound.
	Get(ctx context.Context, id string) (*Call, error)
	// List returns the calls matching f, newest first.
	List(ctx context.Context, f Filter) ([]*Call, error)
	// Stats summarises the calls matching f (f.Limit is ignored).
	Stats(ctx context.Context, f Filter) (*Stats, error)
	// After returns at most limit calls committed after position seq, in
	// commit order, with Seq set: the store is the exporters' outbox.
	After(ctx context.Context, seq int64, limit int) ([]*Call, error)
	// Cursor returns the position up to which the named exporter has
	// delivered every call (0 when it never has).
	Cursor(ctx context.Context, name string) (int64, error)
	// SetCursor records that the named exporter delivered every call up to
	// position seq; it returns only after that is durable.
	SetCursor(ctx context.Context, name string, seq int64) error
	// Close releases the store; it must not be used afterwards.
	Close() error
}

// Sink receives calls as they finish. Record must not block: it is called on
// the request path.
type Sink interface {
	Record(c *Call)
}

// Sinks hands each call to every sink in order.
type Sinks []Sink

// Record calls Record of each sink.
func (s Sinks) Record(c *Call) {
	for _, sink := range s {
		sink.Record(c)
	}
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(c *Call)

// Record calls f(c).
func (f SinkFunc) Record(c *Call) { f(c) }

// Filter selects calls. Zero fields match everything.
type Filter struct {
	Since      time.Time // start >= Since
	Until      time.Time // start < Until
	Model      string    // request or response model
	Run        string
	Experiment string
	Operation  string
	MaxSeq     int64 // seq <= MaxSeq, when > 0
	Limit      int   // at most this many calls; 0 means the store's default (100)
	// Before, when set, selects only the calls after it in List's order
	// (start descending, then id descending): the next page after a call.
	Before *Position
	// OmitText makes List leave Input, Output, Tools and ToolCalls empty (a store need not
	// read them at all); Get always returns them.
	OmitText bool
}

// Position is a place in List's order: a call's start and id.
type Position struct {
	Start time.Time
	ID    string
}

// PositionOf returns the position of c in List's order.
func PositionOf(c *Call) Position { return Position{Start: c.Start, ID: c.ID} }

// DefaultLimit is the number of calls List returns when Filter.Limit is 0.
const DefaultLimit = 100

// Stats summarises a set of calls: totals and one group per model.
type Stats struct {
	Totals Summary   `json:"totals"`
	Groups []Summary `json:"groups"` // ordered by call count, descending
}

// Summary holds the aggregate figures of a set of calls. Latency figures are
// nearest-rank percentiles in milliseconds; TTFT ones cover streamed calls only.
type Summary struct {
	Key               string  `json:"key,omitempty"` // the group's model; empty for totals
	Calls             int64   `json:"calls"`
	Errors            int64   `json:"errors"`
	InputTokens       int64   `json:"input_tokens"`
	OutputTokens      int64   `json:"output_tokens"`
	TotalTokens       int64   `json:"total_tokens"`
	CachedInputTokens int64   `json:"cached_input_tokens"`
	ReasoningTokens   int64   `json:"reasoning_tokens"`
	CostUSD           float64 `json:"cost_usd"`
	CostUnknown       int64   `json:"cost_unknown"` // calls whose price is unknown
	LatencyP50MS      float64 `json:"latency_p50_ms"`
	LatencyP95MS      float64 `json:"latency_p95_ms"`
	LatencyP99MS      float64 `json:"latency_p99_ms"`
	TTFTP50MS         float64 `json:"ttft_p50_ms"`
	TTFTP95MS         float64 `json:"ttft_p95_ms"`
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, or 0 when it is empty.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999999)
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// Pricer prices calls.
type Pricer interface {
	// Price returns the cost of c's usage, or nil when c's model has no known
	// price (never a zero cost for an unknown model).
	Price(c *Call) *Cost
}
