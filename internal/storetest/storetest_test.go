package storetest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"llmscope"
)

// memStore is the simplest correct Store: it checks the suite itself, since
// a suite that a plain reference implementation fails is wrong.
type memStore struct {
	mu      sync.Mutex
	calls   map[string][]byte // JSON, so nothing is shared with the caller
	order   []string          // ids in commit order; seq = index + 1
	seq     map[string]int64
	cursors map[string]int64
}

var _ llmscope.Store = (*memStore)(nil)

func (m *memStore) Write(_ context.Context, calls []*llmscope.Call) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range calls {
		if _, ok := m.calls[c.ID]; ok {
			continue
		}
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		m.calls[c.ID] = b
		m.order = append(m.order, c.ID)
		m.seq[c.ID] = int64(len(m.order))
	}
	return nil
}

func (m *memStore) After(_ context.Context, seq int64, limit int) ([]*llmscope.Call, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*llmscope.Call
	for i := int(seq); i < len(m.order) && len(out) < limit; i++ {
		b, ok := m.calls[m.order[i]]
		if !ok {
			continue // pruned
		}
		c := m.load(b)
		c.Seq = int64(i + 1)
		out = append(out, c)
	}
	return out, nil
}

func (m *memStore) Cursor(_ context.Context, name string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursors[name], nil
}

func (m *memStore) SetCursor(_ context.Context, name string, seq int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cursors[name] = seq
	return nil
}

func (m *memStore) load(b []byte) *llmscope.Call {
	var c llmscope.Call
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return &c
}

func (m *memStore) Get(_ context.Context, id string) (*llmscope.Call, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.calls[id]
	if !ok {
		return nil, fmt.Errorf("mem: get %q: %w", id, llmscope.ErrNotFound)
	}
	return m.load(b), nil
}

func (m *memStore) all(f llmscope.Filter) []*llmscope.Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*llmscope.Call
	for id, b := range m.calls {
		if f.MaxSeq > 0 && m.seq[id] > f.MaxSeq {
			continue
		}
		if c := m.load(b); matches(f, c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *llmscope.Call) int {
		return cmp.Or(b.Start.Compare(a.Start), strings.Compare(b.ID, a.ID))
	})
	return out
}

func (m *memStore) List(_ context.Context, f llmscope.Filter) ([]*llmscope.Call, error) {
	out := m.all(f)
	limit := f.Limit
	if limit <= 0 {
		limit = llmscope.DefaultLimit
	}
	out = out[:min(limit, len(out))]
	if f.OmitText {
		for _, c := range out {
			c.Input, c.Output, c.Tools, c.ToolCalls = "", "", "", ""
		}
	}
	return out, nil
}

func (m *memStore) Stats(_ context.Context, f llmscope.Filter) (*llmscope.Stats, error) {
	return expectStats(m.all(f)), nil
}

func (m *memStore) Close() error { return nil }

var _ llmscope.Pruner = (*memStore)(nil)

func (m *memStore) Prune(_ context.Context, before time.Time, limit int) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	bound := int64(math.MaxInt64)
	for _, seq := range m.cursors {
		bound = min(bound, seq)
	}
	type candidate struct {
		id    string
		start time.Time
		seq   int64
	}
	var old []candidate
	for id, b := range m.calls {
		if c := m.load(b); c.Start.Before(before) && m.seq[id] <= bound {
			old = append(old, candidate{id, c.Start, m.seq[id]})
		}
	}
	slices.SortFunc(old, func(a, b candidate) int { return cmp.Or(a.start.Compare(b.start), cmp.Compare(a.seq, b.seq)) })
	old = old[:max(0, min(limit, len(old)))]
	for _, c := range old {
		delete(m.calls, c.id)
		delete(m.seq, c.id)
	}
	return int64(len(old)), nil
}

func TestMemStore(t *testing.T) {
	Run(t, func(t *testing.T) llmscope.Store {
		return &memStore{calls: map[string][]byte{}, seq: map[string]int64{}, cursors: map[string]int64{}}
	})
}
