package sim

import (
	"container/list"
	"sync"
)

// Prompt caching, as the API reports it: a prompt of at least
// minCachedPrompt tokens seen before (by this server, for the same model)
// reports its tokens rounded down to a multiple of cacheBlock as cached.
const (
	minCachedPrompt = 1024
	cacheBlock      = 128
	promptCacheSize = 1024
)

// lru is a bounded, goroutine-safe LRU map from hashes to ints.
type lru struct {
	mu    sync.Mutex
	max   int
	order list.List // front = most recent; values are *lruEntry
	index map[uint64]*list.Element
}

type lruEntry struct {
	key uint64
	val int
}

func newLRU(max int) *lru {
	return &lru{max: max, index: make(map[uint64]*list.Element, max)}
}

// get returns the value of key and marks it recently used.
func (c *lru) get(key uint64) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.index[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruEntry).val, true
	}
	return 0, false
}

// put sets key to val, evicting the least recently used entry when full.
func (c *lru) put(key uint64, val int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(key, val)
}

func (c *lru) putLocked(key uint64, val int) {
	if e, ok := c.index[key]; ok {
		e.Value.(*lruEntry).val = val
		c.order.MoveToFront(e)
		return
	}
	c.index[key] = c.order.PushFront(&lruEntry{key: key, val: val})
	if c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.index, last.Value.(*lruEntry).key)
	}
}

// seen records key and reports whether it was already present.
func (c *lru) seen(key uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.index[key]; ok {
		c.order.MoveToFront(e)
		return true
	}
	c.putLocked(key, 0)
	return false
}

// countCacheSize bounds the memo of prompt token counts: counting is most of
// the cost of an answer, and benchmarks repeat their prompts.
const countCacheSize = 4096

// promptTokens returns count(), memoised under the request hash h.
func (s *Server) promptTokens(h uint64, count func() int) int {
	if n, ok := s.counts.get(h); ok {
		return n
	}
	n := count()
	s.counts.put(h, n)
	return n
}

// cachedTokens returns the cached prompt tokens to report for a prompt with
// hash key and promptTokens tokens, and remembers the prompt.
func (s *Server) cachedTokens(key uint64, promptTokens int) int {
	if promptTokens < minCachedPrompt {
		return 0
	}
	if s.cache.seen(key) {
		return promptTokens / cacheBlock * cacheBlock
	}
	return 0
}

// usage is the token accounting of one answer.
type usage struct {
	prompt     int
	cached     int // part of prompt
	completion int // visible + reasoning
	reasoning  int // part of completion
}

func newUsage(prompt, cached int, p *plan) usage {
	return usage{prompt: prompt, cached: cached, completion: p.completionTokens(), reasoning: p.reasoning}
}

// appendChat appends chat completion usage with the detail objects the API
// sends.
func (u usage) appendChat(b []byte) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = appendInt(b, u.prompt)
	b = append(b, `,"completion_tokens":`...)
	b = appendInt(b, u.completion)
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, u.prompt+u.completion)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, u.cached)
	b = append(b, `,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":`...)
	b = appendInt(b, u.reasoning)
	return append(b, `,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`...)
}

// appendCompletion appends legacy completion usage: the three totals only.
func (u usage) appendCompletion(b []byte) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = appendInt(b, u.prompt)
	b = append(b, `,"completion_tokens":`...)
	b = appendInt(b, u.completion)
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, u.prompt+u.completion)
	return append(b, '}')
}

// appendResponses appends Responses API usage.
func (u usage) appendResponses(b []byte) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, u.prompt)
	b = append(b, `,"input_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, u.cached)
	b = append(b, `},"output_tokens":`...)
	b = appendInt(b, u.completion)
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
	b = appendInt(b, u.reasoning)
	b = append(b, `},"total_tokens":`...)
	b = appendInt(b, u.prompt+u.completion)
	return append(b, '}')
}
