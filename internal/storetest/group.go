package storetest

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"llmscope"
)

// RunGroupBy runs the contract of Filter.GroupBy and Filter.MaxGroups as
// subtests of t, like Run: Stats groups by any combination of
// llmscope.GroupKeys, in the order given, orders groups by call count
// descending and then by their values in that order, cuts them to
// MaxGroups (DefaultMaxGroups when 0) while the totals still cover every
// call, and refuses an unknown key.
func RunGroupBy(t *testing.T, open func(t *testing.T) llmscope.Store) {
	t.Helper()
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, s llmscope.Store)
	}{
		{"StatsGroupBy", testStatsGroupBy},
		{"StatsMaxGroups", testStatsMaxGroups},
		{"StatsGroupByUnknown", testStatsGroupByUnknown},
	} {
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

// groupValue is c's value of one group key, computed here from the fields.
func groupValue(c *llmscope.Call, key string) string {
	switch key {
	case "model":
		if c.RequestModel != "" {
			return c.RequestModel
		}
		return c.ResponseModel
	case "experiment":
		return c.Experiment
	case "run":
		return c.Run
	case "user":
		return c.User
	case "session":
		return c.Session
	case "provider":
		return c.Provider
	case "operation":
		return c.Operation
	case "upstream":
		return c.Upstream
	case "key":
		return c.Key
	case "team":
		return c.Team
	}
	panic("storetest: unknown group key " + key)
}

// expectGrouped is the reference implementation of Stats with an explicit
// f.GroupBy (keys) and f.MaxGroups (maxGroups; 0 for the default).
func expectGrouped(calls []*llmscope.Call, keys []string, maxGroups int) *llmscope.Stats {
	type acc struct {
		summary
		vals []string
	}
	var total summary
	groups := map[string]*acc{}
	for _, c := range calls {
		total.add(c)
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = groupValue(c, k)
		}
		id := fmt.Sprintf("%q", vals)
		g := groups[id]
		if g == nil {
			g = &acc{vals: vals}
			for i, k := range keys {
				g.s.Values.Set(k, vals[i])
			}
			if len(keys) == 1 {
				g.s.Key = vals[0]
			}
			groups[id] = g
		}
		g.add(c)
	}
	all := make([]*acc, 0, len(groups))
	for _, g := range groups {
		all = append(all, g)
	}
	slices.SortFunc(all, func(a, b *acc) int {
		if c := cmp.Compare(b.s.Calls, a.s.Calls); c != 0 {
			return c
		}
		return slices.Compare(a.vals, b.vals)
	})
	if maxGroups <= 0 {
		maxGroups = llmscope.DefaultMaxGroups
	}
	st := &llmscope.Stats{GroupBy: keys, Totals: total.result(), Groups: []llmscope.Summary{}, GroupsTotal: len(all)}
	if len(all) > maxGroups {
		all, st.Truncated = all[:maxGroups], true
	}
	for _, g := range all {
		st.Groups = append(st.Groups, g.result())
	}
	return st
}

func assertGrouped(t *testing.T, label string, got, want *llmscope.Stats) {
	t.Helper()
	assertStats(t, label, got, want)
	if !slices.Equal(got.GroupBy, want.GroupBy) || got.GroupsTotal != want.GroupsTotal || got.Truncated != want.Truncated {
		t.Errorf("%s: GroupBy %v, GroupsTotal %d, Truncated %v; want %v, %d, %v", label,
			got.GroupBy, got.GroupsTotal, got.Truncated, want.GroupBy, want.GroupsTotal, want.Truncated)
	}
}

// groupData returns statsData's calls spread over experiments, runs,
// users, sessions, providers and operations, each with an empty value too.
func groupData(rng *rand.Rand) []*llmscope.Call {
	calls := statsData(rng)
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	for _, c := range calls {
		c.Experiment = pick("exp-a", "exp-b", "")
		c.Run = pick("r1", "r2", "r3", "")
		c.User = pick("alice", "bob", "")
		c.Session = pick("s1", "")
		c.Provider = pick("openai", "anthropic", "gcp.gemini")
		c.Upstream = pick("", "azure-east", "openai-main")
		c.Key = pick("", "ci-bot", "alice-laptop")
		c.Team = pick("", "search", "ads")
		c.Operation = pick(llmscope.OpChat, "embeddings", "responses")
	}
	return calls
}

func testStatsGroupBy(t *testing.T, s llmscope.Store) {
	rng := rand.New(rand.NewPCG(11, 12))
	calls := groupData(rng)
	shuffledBatches(t, s, rng, calls)
	cases := [][]string{{"experiment", "run"}, {"run", "experiment"}, {"model"}, {"model", "user", "provider"}, llmscope.GroupKeys}
	for _, k := range llmscope.GroupKeys {
		cases = append(cases, []string{k})
	}
	for _, keys := range cases {
		groupBy := strings.Join(keys, ",")
		want := expectGrouped(calls, keys, 0)
		assertGrouped(t, "Stats(group by "+groupBy+")", stats(t, s, llmscope.Filter{GroupBy: groupBy}), want)
	}
	// With a filter, and with spaces around the keys.
	f := llmscope.Filter{Experiment: "exp-a", Since: time.Date(2025, 9, 1, 0, 30, 0, 0, time.UTC), GroupBy: " run , user "}
	want := expectGrouped(selectCalls(llmscope.Filter{Experiment: f.Experiment, Since: f.Since}, calls), []string{"run", "user"}, 0)
	assertGrouped(t, "Stats(exp-a, since, group by run, user)", stats(t, s, f), want)
	if len(want.Groups) < 6 {
		t.Fatalf("fixture: %d groups of exp-a by run and user", len(want.Groups))
	}
	// The default grouping names its key.
	if got := stats(t, s, llmscope.Filter{}); !slices.Equal(got.GroupBy, []string{"model"}) || got.GroupsTotal != 5 || got.Truncated {
		t.Errorf("Stats(default): GroupBy %v, GroupsTotal %d, Truncated %v; want [model], 5, false", got.GroupBy, got.GroupsTotal, got.Truncated)
	}
}

func testStatsMaxGroups(t *testing.T, s llmscope.Store) {
	rng := rand.New(rand.NewPCG(13, 14))
	calls := groupData(rng)
	shuffledBatches(t, s, rng, calls)
	for _, n := range []int{1, 3, 10, 35, 36, 1000} {
		want := expectGrouped(calls, []string{"run", "user", "operation"}, n)
		assertGrouped(t, fmt.Sprintf("Stats(MaxGroups %d)", n), stats(t, s, llmscope.Filter{GroupBy: "run,user,operation", MaxGroups: n}), want)
	}
	if want := expectGrouped(calls, []string{"run", "user", "operation"}, 0); want.GroupsTotal != 36 {
		t.Fatalf("fixture: %d groups, want 36", want.GroupsTotal)
	}
	// The default cut: more distinct values than DefaultMaxGroups.
	var many []*llmscope.Call
	base := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	for i := range llmscope.DefaultMaxGroups + 5 {
		c := sequence("many", 1, base)[0]
		c.ID = fmt.Sprintf("many-%05d", i)
		c.User = fmt.Sprintf("user-%05d", i%(llmscope.DefaultMaxGroups+3))
		randomize(rng, c, 1)
		many = append(many, c)
	}
	write(t, s, many...)
	f := llmscope.Filter{Since: base, GroupBy: "user"}
	want := expectGrouped(many, []string{"user"}, 0)
	got := stats(t, s, f)
	assertGrouped(t, "Stats(default MaxGroups)", got, want)
	if !got.Truncated || len(got.Groups) != llmscope.DefaultMaxGroups || got.Totals.Calls != int64(len(many)) {
		t.Errorf("default cut: %d groups, truncated %v, %d calls", len(got.Groups), got.Truncated, got.Totals.Calls)
	}
}

func testStatsGroupByUnknown(t *testing.T, s llmscope.Store) {
	write(t, s, sequence("u", 3, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))...)
	for _, g := range []string{"color", "model,", "run,run", "model;drop table calls"} {
		if _, err := s.Stats(t.Context(), llmscope.Filter{GroupBy: g}); err == nil {
			t.Errorf("Stats(GroupBy %q) = nil error", g)
		}
	}
}
