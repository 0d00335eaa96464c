package storetest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"llmscope"
)

// testListPages walks 250 calls, many sharing a start time, 40 at a time
// with Before set to the last call of the previous page: every call comes
// exactly once, in List's order, and the walk ends on a short page.
func testListPages(t *testing.T, s llmscope.Store) {
	rng := rand.New(rand.NewPCG(5, 6))
	base := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	calls := sequence("page", 250, base)
	for i, c := range calls {
		// 25 distinct instants, about 10 calls on each: pages end inside
		// runs of equal starts.
		c.Start = base.Add(time.Duration(rng.IntN(25)) * time.Microsecond)
		c.ID = fmt.Sprintf("page-%03d-%d", rng.IntN(1000), i)
	}
	shuffledBatches(t, s, rng, calls)
	want := newestFirst(calls)

	var got []*llmscope.Call
	f := llmscope.Filter{Limit: 40}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatalf("no end after %d pages (%d calls)", pages, len(got))
		}
		page := list(t, s, f)
		got = append(got, page...)
		if len(page) < f.Limit {
			break
		}
		p := llmscope.PositionOf(page[len(page)-1])
		f.Before = &p
	}
	assertIDs(t, "pages of 40", got, want)

	// Before combines with the other conditions.
	p := llmscope.PositionOf(want[99])
	f = llmscope.Filter{Limit: 1000, Before: &p, Operation: llmscope.OpChat}
	assertIDs(t, "after the 100th", list(t, s, f), want[100:])
	f.Operation = llmscope.OpEmbeddings
	assertIDs(t, "after the 100th, no match", list(t, s, f), nil)
	// A position between stored calls (an id no call has).
	p = llmscope.Position{Start: want[0].Start, ID: want[0].ID + "~"}
	assertIDs(t, "before a position no call has", list(t, s, llmscope.Filter{Limit: 1000, Before: &p}), want)
}

// testListOmitText: with OmitText, List leaves the captured texts empty
// and keeps everything else; Get still returns them.
func testListOmitText(t *testing.T, s llmscope.Store) {
	c := fullCall()
	c.Input = strings.Repeat("input ", 1000)
	write(t, s, c)
	got := list(t, s, llmscope.Filter{OmitText: true})
	if len(got) != 1 {
		t.Fatalf("List returned %d calls, want 1", len(got))
	}
	if got[0].Input != "" || got[0].Output != "" || got[0].Tools != "" || got[0].ToolCalls != "" {
		t.Errorf("OmitText: input %d bytes, output %d, tools %d, tool calls %d; want none",
			len(got[0].Input), len(got[0].Output), len(got[0].Tools), len(got[0].ToolCalls))
	}
	want := normalize(c)
	want.Input, want.Output, want.Tools, want.ToolCalls = "", "", "", ""
	assertSameCall(t, "List OmitText", normalize(got[0]), want)
	assertSameCall(t, "List", normalize(list(t, s, llmscope.Filter{})[0]), normalize(c))
	assertSameCall(t, "Get", normalize(get(t, s, c.ID)), normalize(c))
}
