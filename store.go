package llmscope

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	NoRun      bool // only calls outside any named run (Run is then ignored)
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
	// GroupBy is what Stats groups by: comma-separated keys from GroupKeys
	// ("experiment,run"; see ParseGroupBy). Empty groups by model.
	GroupBy string
	// MaxGroups bounds the groups Stats returns (the largest ones; the
	// totals still cover every call); <= 0 means DefaultMaxGroups.
	MaxGroups int
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

// Stats summarises a set of calls: totals and one group per distinct value
// of the group keys (the model by default).
//
// Its JSON form (the answer of /api/stats and of `stats --json`) is
//
//	{"group_by":["experiment","run"],
//	 "totals":{…Summary…},
//	 "groups":[{"keys":{"experiment":"a","run":"r1"},"calls":3,…Summary…},…],
//	 "groups_total":2,"truncated":false}
//
// where each group carries "keys", its value of every key in group_by, and,
// when grouping by one key only, also that value as "key" (so grouping by
// model keeps the answer's historical shape: "key" is the model). TTFT
// percentiles are null when no call of the set streamed with a first chunk.
type Stats struct {
	// GroupBy lists the keys the groups are by, in the order asked
	// (["model"] by default).
	GroupBy []string  `json:"group_by"`
	Totals  Summary   `json:"totals"`
	Groups  []Summary `json:"groups"` // ordered by call count, descending, then by key values
	// GroupsTotal counts the groups before the cut to Filter.MaxGroups;
	// Truncated says the cut dropped some (the smallest).
	GroupsTotal int  `json:"groups_total"`
	Truncated   bool `json:"truncated"`
}

// Summary holds the aggregate figures of a set of calls. Latency figures are
// nearest-rank percentiles in milliseconds; TTFT ones cover streamed calls
// that saw a first chunk only, and are 0 (null in JSON) when there are none.
type Summary struct {
	// Key is the group's value when grouping by one key (the model by
	// default); empty for totals and when grouping by several keys.
	Key string `json:"key,omitempty"`
	// Values holds the group's value of each key of an explicit
	// Filter.GroupBy; with the default grouping only Key is set. Read both
	// through Stats.KeyValues.
	Values            GroupValues `json:"-"`
	Calls             int64       `json:"calls"`
	Errors            int64       `json:"errors"`
	InputTokens       int64       `json:"input_tokens"`
	OutputTokens      int64       `json:"output_tokens"`
	TotalTokens       int64       `json:"total_tokens"`
	CachedInputTokens int64       `json:"cached_input_tokens"`
	ReasoningTokens   int64       `json:"reasoning_tokens"`
	CostUSD           float64     `json:"cost_usd"`
	CostUnknown       int64       `json:"cost_unknown"` // calls whose price is unknown
	LatencyP50MS      float64     `json:"latency_p50_ms"`
	LatencyP95MS      float64     `json:"latency_p95_ms"`
	LatencyP99MS      float64     `json:"latency_p99_ms"`
	TTFTP50MS         float64     `json:"ttft_p50_ms"`
	TTFTP95MS         float64     `json:"ttft_p95_ms"`
}

// The keys Stats can group by (Filter.GroupBy).
const (
	GroupModel      = "model" // the request model, else the response model (Call.Model)
	GroupExperiment = "experiment"
	GroupRun        = "run"
	GroupUser       = "user"
	GroupSession    = "session"
	GroupProvider   = "provider"
	GroupOperation  = "operation"
	GroupUpstream   = "upstream" // the deployment that answered (Call.Upstream)
	GroupKey        = "key"      // the client key's name (Call.Key)
	GroupTeam       = "team"     // the client key's team (Call.Team)
)

// GroupKeys lists the keys Filter.GroupBy accepts.
var GroupKeys = []string{GroupModel, GroupExperiment, GroupRun, GroupUser, GroupSession, GroupProvider, GroupOperation, GroupUpstream, GroupKey, GroupTeam}

// DefaultMaxGroups is the number of groups Stats returns at most when
// Filter.MaxGroups is 0.
const DefaultMaxGroups = 1000

// GroupValues holds a group's value of each group key (a comparable struct,
// so Summary stays comparable).
type GroupValues struct {
	Model, Experiment, Run, User, Session, Provider, Operation, Upstream, Key, Team string
}

// field returns the field of v that holds key, or nil for an unknown key.
func (v *GroupValues) field(key string) *string {
	switch key {
	case GroupModel:
		return &v.Model
	case GroupExperiment:
		return &v.Experiment
	case GroupRun:
		return &v.Run
	case GroupUser:
		return &v.User
	case GroupSession:
		return &v.Session
	case GroupProvider:
		return &v.Provider
	case GroupOperation:
		return &v.Operation
	case GroupUpstream:
		return &v.Upstream
	case GroupKey:
		return &v.Key
	case GroupTeam:
		return &v.Team
	}
	return nil
}

// Get returns the value of key ("" for an unknown key).
func (v GroupValues) Get(key string) string {
	if p := v.field(key); p != nil {
		return *p
	}
	return ""
}

// Set sets the value of key; it ignores an unknown key.
func (v *GroupValues) Set(key, val string) {
	if p := v.field(key); p != nil {
		*p = val
	}
}

// GroupValuesOf returns c's value of every group key.
func GroupValuesOf(c *Call) GroupValues {
	return GroupValues{Model: c.Model(), Experiment: c.Experiment, Run: c.Run, User: c.User,
		Session: c.Session, Provider: c.Provider, Operation: c.Operation, Upstream: c.Upstream, Key: c.Key, Team: c.Team}
}

// ParseGroupBy reads a comma-separated list of group keys ("experiment,run";
// spaces around keys are ignored). "" means the default, ["model"]. An
// unknown or repeated key is an error naming the allowed ones.
func ParseGroupBy(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return []string{GroupModel}, nil
	}
	var keys []string
	for k := range strings.SplitSeq(s, ",") {
		k = strings.TrimSpace(k)
		var v GroupValues
		switch {
		case v.field(k) == nil:
			return nil, fmt.Errorf("group by %q: unknown key; allowed: %s", k, strings.Join(GroupKeys, ", "))
		case containsString(keys, k):
			return nil, fmt.Errorf("group by %q: key given twice", k)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// KeyValues returns g's value of each key of st.GroupBy, in that order.
func (st *Stats) KeyValues(g Summary) []string {
	keys := st.GroupBy
	if len(keys) == 0 {
		keys = []string{GroupModel}
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = g.Values.Get(k)
		if g.Values == (GroupValues{}) && len(keys) == 1 {
			out[i] = g.Key // the default grouping sets Key only
		}
	}
	return out
}

// CompareGroups orders groups as Stats does: by call count descending, then
// by their key values (vals, in GroupBy order) ascending.
func CompareGroups(aCalls int64, aVals []string, bCalls int64, bVals []string) int {
	if c := cmp.Compare(bCalls, aCalls); c != 0 {
		return c
	}
	for i := range min(len(aVals), len(bVals)) {
		if c := cmp.Compare(aVals[i], bVals[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(aVals), len(bVals))
}

// summaryFields is Summary without its methods.
type summaryFields Summary

// summaryJSON is the JSON form of a Summary: TTFT percentiles null when no
// call counted for them, and, in a group, its keys.
type summaryJSON struct {
	Keys *keysJSON `json:"keys,omitempty"`
	*summaryFields
	TTFTP50MS *float64 `json:"ttft_p50_ms"`
	TTFTP95MS *float64 `json:"ttft_p95_ms"`
}

func newSummaryJSON(s *Summary, keys *keysJSON) summaryJSON {
	out := summaryJSON{Keys: keys, summaryFields: (*summaryFields)(s)}
	// TTFTs counted are > 0, so a zero percentile means none counted.
	if s.TTFTP50MS != 0 {
		out.TTFTP50MS, out.TTFTP95MS = &s.TTFTP50MS, &s.TTFTP95MS
	}
	return out
}

// keysJSON is an object with the group keys in their order.
type keysJSON struct{ names, vals []string }

func (k *keysJSON) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, n := range k.names {
		if i > 0 {
			b = append(b, ',')
		}
		kb, _ := json.Marshal(n)
		vb, err := json.Marshal(k.vals[i])
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, kb...), ':'), vb...)
	}
	return append(b, '}'), nil
}

// MarshalJSON encodes s with null TTFT percentiles when none was counted.
func (s Summary) MarshalJSON() ([]byte, error) {
	return json.Marshal(newSummaryJSON(&s, nil))
}

// MarshalJSON encodes st in the form the Stats comment shows.
func (st Stats) MarshalJSON() ([]byte, error) {
	groupBy := st.GroupBy
	if len(groupBy) == 0 {
		groupBy = []string{GroupModel}
	}
	out := struct {
		GroupBy     []string      `json:"group_by"`
		Totals      summaryJSON   `json:"totals"`
		Groups      []summaryJSON `json:"groups"`
		GroupsTotal int           `json:"groups_total"`
		Truncated   bool          `json:"truncated"`
	}{GroupBy: groupBy, Totals: newSummaryJSON(&st.Totals, nil), Groups: make([]summaryJSON, len(st.Groups)),
		GroupsTotal: st.GroupsTotal, Truncated: st.Truncated}
	if out.GroupsTotal < len(st.Groups) {
		out.GroupsTotal = len(st.Groups)
	}
	st.GroupBy = groupBy
	for i := range st.Groups {
		g := &st.Groups[i]
		out.Groups[i] = newSummaryJSON(g, &keysJSON{names: groupBy, vals: st.KeyValues(*g)})
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON writes; each group's keys go to its
// Values (and, with one key, to Key as well).
func (st *Stats) UnmarshalJSON(b []byte) error {
	var in struct {
		GroupBy []string `json:"group_by"`
		Totals  Summary  `json:"totals"`
		Groups  []struct {
			Keys map[string]*string `json:"keys"`
			summaryFields
		} `json:"groups"`
		GroupsTotal int  `json:"groups_total"`
		Truncated   bool `json:"truncated"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*st = Stats{GroupBy: in.GroupBy, Totals: in.Totals, GroupsTotal: in.GroupsTotal, Truncated: in.Truncated}
	if in.Groups != nil {
		st.Groups = make([]Summary, len(in.Groups))
	}
	for i, g := range in.Groups {
		s := Summary(g.summaryFields)
		for k, v := range g.Keys {
			if v != nil {
				s.Values.Set(k, *v)
			}
		}
		st.Groups[i] = s
	}
	return nil
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

// Pruner is a Store that can delete old calls (serve --retention). Stores
// need not implement it.
type Pruner interface {
	// Prune deletes at most limit calls whose Start is before before, oldest
	// Start first, and returns how many it deleted. It never deletes a call
	// some exporter has not delivered yet: when any exporter cursor is stored
	// (see SetCursor), only calls with a seq at or below the smallest one
	// are deleted, so a lagging exporter loses nothing; a cursor left by an
	// exporter no longer in use therefore holds back every call after it.
	// Deleting never gives a position back: calls written later still get
	// seqs above every seq ever used, so After and the cursors stay valid.
	// Prune is idempotent, deletes nothing when limit <= 0, and may delete
	// in several transactions, so after an error some calls may be gone.
	Prune(ctx context.Context, before time.Time, limit int) (deleted int64, err error)
}

// PartitionDropper is a Pruner whose store keeps calls in time partitions.
// DropBefore removes the partitions whose calls all start before before
// and have all been delivered by every exporter (as for Prune), whole, and
// returns how many calls went with them. Retention calls it before Prune,
// which then deletes what is left row by row.
type PartitionDropper interface {
	DropBefore(ctx context.Context, before time.Time) (deleted int64, err error)
}

// Leaser is a Store that grants named, expiring leases, so that of several
// processes sharing the store one at a time does a piece of work (ExportLoop
// exports only while it holds the lease "export:<exporter name>"). Stores
// need not implement it. The store's own clock decides when a lease expires,
// so the clocks of the processes asking do not matter.
type Leaser interface {
	// Lease acquires the named lease for owner until ttl from now when it is
	// free or expired, renews it for ttl from now when owner holds it, and
	// reports false, changing nothing, when another owner holds it unexpired.
	Lease(ctx context.Context, name, owner string, ttl time.Duration) (held bool, err error)
	// Release frees the named lease at once when owner holds it, so another
	// owner can acquire it without waiting for it to expire; otherwise it
	// does nothing.
	Release(ctx context.Context, name, owner string) error
	// SetCursorLeased is SetCursor fenced by a lease: it stores the cursor
	// only while owner holds the unexpired lease named lease, atomically
	// with that check, and otherwise changes nothing and returns an error
	// wrapping ErrLeaseLost. An owner that lost its lease (paused,
	// partitioned) therefore never moves the cursor behind the back of the
	// one that took over.
	SetCursorLeased(ctx context.Context, lease, owner, cursor string, seq int64) error
}

// ErrLeaseLost is the error of SetCursorLeased when the owner no longer holds
// the lease.
var ErrLeaseLost = errors.New("lease lost")
