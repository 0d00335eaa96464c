package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"llmscope"
	"llmscope/budget"
)

// StoreKeysConfig tunes a StoreKeys; the zero value is the default.
type StoreKeysConfig struct {
	// Interval is how often Run polls KeysVersion; 0 is 100 ms.
	Interval time.Duration
	// MaxKeys bounds the keys kept in memory (found, revoked included);
	// 0 is 10000. Beyond it an arbitrary one is forgotten, to be read
	// again when next presented.
	MaxKeys int
	// MaxUnknown bounds the remembered hashes of unknown keys; 0 is 1000.
	MaxUnknown int
	// Logger receives the poller's failures and recoveries; nil discards.
	Logger *slog.Logger
}

// StoreKeys authenticates client keys kept in a budget.KeyStore (the
// SQLite or Postgres store) by the SHA-256 of the presented key. Lookups
// are cached in memory, found and unknown alike, each bounded; the cache
// is dropped whenever the store's KeysVersion changes, which Run polls
// every Interval. So a revocation or rotation made through any gateway
// or the keys command takes effect on every gateway sharing the store
// within about one Interval (100 ms), and at once on the gateway that
// made it when it Refreshes (the web handler does). Expiry is checked
// per request against the clock, so it takes effect at once everywhere.
// While the store cannot be read the cache stays as it was: known keys
// keep working and changes are seen when it answers again. It is safe
// for concurrent use.
type StoreKeys struct {
	ks                 budget.KeyStore
	log                *slog.Logger
	interval           time.Duration
	maxKeys, maxUnknwn int

	mu      sync.RWMutex
	version int64  // the KeysVersion the cache is of
	gen     uint64 // bumped when the cache is dropped
	known   map[[32]byte]*storedKey
	unknown map[[32]byte]struct{}
	failing bool // the last poll failed (guarded by mu)

	any atomic.Bool // the store holds at least one key, revoked included

	flightMu sync.Mutex
	flights  map[[32]byte]*flight // reads under way, by hash
}

// storedKey is a cached key: what the context carries, and whether it is
// revoked.
type storedKey struct {
	key     *llmscope.ClientKey
	revoked bool
}

// NewStoreKeys reads ks's version and whether it holds any key, and
// returns its cache; it fails when ks cannot be read. Start its poller
// with Run.
func NewStoreKeys(ctx context.Context, ks budget.KeyStore, cfg StoreKeysConfig) (*StoreKeys, error) {
	s := &StoreKeys{ks: ks, log: cfg.Logger, interval: cfg.Interval, maxKeys: cfg.MaxKeys, maxUnknwn: cfg.MaxUnknown,
		version: -1, known: map[[32]byte]*storedKey{}, unknown: map[[32]byte]struct{}{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.interval <= 0 {
		s.interval = 100 * time.Millisecond
	}
	if s.maxKeys <= 0 {
		s.maxKeys = 10000
	}
	if s.maxUnknwn <= 0 {
		s.maxUnknwn = 1000
	}
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Run polls KeysVersion every Interval until ctx ends, dropping the cache
// when it changed. A failed poll is logged once (and its recovery), and
// the cache kept.
func (s *StoreKeys) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.Refresh(pctx)
		cancel()
		s.mu.Lock()
		was := s.failing
		s.failing = err != nil && ctx.Err() == nil
		s.mu.Unlock()
		switch {
		case s.failing && !was:
			s.log.Warn("cannot read the client keys' version; keeping the cached keys until the store answers", "err", err)
		case !s.failing && was:
			s.log.Info("client keys' version readable again")
		}
	}
}

// Refresh reads KeysVersion and, when it is newer than the cache's (it
// only grows), drops the cache and reads again whether the store holds
// any key.
func (s *StoreKeys) Refresh(ctx context.Context) error {
	v, err := s.ks.KeysVersion(ctx)
	if err != nil {
		return fmt.Errorf("client keys: %w", err)
	}
	s.mu.RLock()
	seen := v <= s.version
	s.mu.RUnlock()
	if seen {
		return nil // an older read, racing a newer one, must not win
	}
	keys, err := s.ks.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("client keys: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v > s.version {
		s.version = v
		s.any.Store(len(keys) > 0)
		s.gen++
		clear(s.known)
		clear(s.unknown)
	}
	return nil
}

// Any reports whether the store held a key (revoked ones count: revoking
// every key must not open the gateway) at the last Refresh.
func (s *StoreKeys) Any() bool {
	if s == nil {
		return false
	}
	return s.any.Load()
}

// Lookup returns the key whose secret hashes to hash, if it may be used
// at now: otherwise budget.ErrKeyNotFound, budget.ErrRevoked or
// budget.ErrExpired (unwrapped, so a refusal does not allocate), or an
// error wrapping the store's when it could not be read. The key returned
// is shared and must not be modified.
func (s *StoreKeys) Lookup(ctx context.Context, hash [32]byte, now time.Time) (*llmscope.ClientKey, error) {
	s.mu.RLock()
	e, found := s.known[hash]
	_, unknown := s.unknown[hash]
	gen := s.gen
	s.mu.RUnlock()
	if !found && !unknown {
		var err error
		if e, err = s.load(ctx, hash, gen); err != nil {
			return nil, err
		}
		found = e != nil
	}
	switch {
	case !found:
		return nil, budget.ErrKeyNotFound
	case e.revoked:
		return nil, budget.ErrRevoked
	case !e.key.Expires.IsZero() && !now.Before(e.key.Expires):
		return nil, budget.ErrExpired
	}
	return e.key, nil
}

// load reads hash's key from the store, once for all the requests that
// miss it at the same time, and caches the answer unless the cache was
// dropped (gen changed) meanwhile: the answer may predate the change. A
// nil entry means unknown.
func (s *StoreKeys) load(ctx context.Context, hash [32]byte, gen uint64) (*storedKey, error) {
	s.flightMu.Lock()
	f, follower := s.flights[hash]
	follower = follower && f.gen == gen // a read begun before the cache was dropped may be stale
	if !follower {
		f = &flight{gen: gen, done: make(chan struct{})}
		if s.flights == nil {
			s.flights = map[[32]byte]*flight{}
		}
		s.flights[hash] = f
	}
	s.flightMu.Unlock()
	if follower {
		select {
		case <-f.done:
			return f.e, f.err
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", errStoreKeys, ctx.Err())
		}
	}
	// The read is shared: one request giving up must not fail the others.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	f.e, f.err = s.read(rctx, hash, gen)
	cancel()
	s.flightMu.Lock()
	if s.flights[hash] == f {
		delete(s.flights, hash)
	}
	s.flightMu.Unlock()
	close(f.done)
	return f.e, f.err
}

// flight is one KeyByHash read that concurrent misses of a hash share.
type flight struct {
	gen  uint64        // the cache generation it began in
	done chan struct{} // closed when e and err are set
	e    *storedKey
	err  error
}

// read is load's KeyByHash and caching.
func (s *StoreKeys) read(ctx context.Context, hash [32]byte, gen uint64) (*storedKey, error) {
	sk, err := s.ks.KeyByHash(ctx, hash)
	var e *storedKey
	switch {
	case err == nil:
		e = &storedKey{revoked: sk.Revoked || !sk.RevokedAt.IsZero(), key: &llmscope.ClientKey{
			Name: sk.Name, User: sk.User, Team: sk.Team, Models: sk.Models, Expires: sk.Expires}}
	case errors.Is(err, budget.ErrKeyNotFound):
	default:
		return nil, fmt.Errorf("%w: %w", errStoreKeys, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return e, nil
	}
	if e != nil {
		if len(s.known) >= s.maxKeys {
			forgetOne(s.known)
		}
		s.known[hash] = e
	} else {
		if len(s.unknown) >= s.maxUnknwn {
			forgetOne(s.unknown)
		}
		s.unknown[hash] = struct{}{}
	}
	return e, nil
}

// forgetOne deletes an arbitrary entry of m.
func forgetOne[V any](m map[[32]byte]V) {
	for k := range m {
		delete(m, k)
		return
	}
}

// cached returns how many found and unknown keys the cache holds.
func (s *StoreKeys) cached() (known, unknown int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.known), len(s.unknown)
}

// Store returns the KeyStore s reads.
func (s *StoreKeys) Store() budget.KeyStore { return s.ks }
