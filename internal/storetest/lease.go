package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"llmscope"
)

// RunLeases runs the contract of llmscope.Leaser as subtests of t, like Run:
// Lease acquires a free lease, renews its owner's and refuses another
// owner's until it expires; a lease that expired goes to whoever asks next;
// Release frees a lease at once, and only its owner's; SetCursorLeased moves
// the cursor only for the owner of an unexpired lease, and returns
// ErrLeaseLost, moving nothing, otherwise, so that no write of a former
// holder lands after the new holder read the cursor. open must return a
// new, empty store that implements llmscope.Leaser.
func RunLeases(t *testing.T, open func(t *testing.T) llmscope.Store) {
	t.Helper()
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, s llmscope.Leaser)
	}{
		{"LeaseAcquireRenewRefuse", testLeaseAcquireRenewRefuse},
		{"LeaseExpiry", testLeaseExpiry},
		{"LeaseRelease", testLeaseRelease},
		{"LeaseRace", testLeaseRace},
		{"SetCursorLeased", testSetCursorLeased},
		{"SetCursorLeasedAfterTakeover", testSetCursorLeasedAfterTakeover},
		{"SetCursorLeasedRace", testSetCursorLeasedRace},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			l, ok := s.(llmscope.Leaser)
			if !ok {
				t.Fatalf("%T does not implement llmscope.Leaser", s)
			}
			c.fn(t, l)
		})
	}
}

// shortTTL is the lease time of the expiry cases; expired waits past it.
const (
	shortTTL = 300 * time.Millisecond
	expired  = shortTTL + 250*time.Millisecond
)

func lease(t *testing.T, s llmscope.Leaser, name, owner string, ttl time.Duration, want bool) {
	t.Helper()
	held, err := s.Lease(t.Context(), name, owner, ttl)
	if err != nil {
		t.Fatalf("Lease(%s, %s): %v", name, owner, err)
	}
	if held != want {
		t.Fatalf("Lease(%s, %s) = %t, want %t", name, owner, held, want)
	}
}

func release(t *testing.T, s llmscope.Leaser, name, owner string) {
	t.Helper()
	if err := s.Release(t.Context(), name, owner); err != nil {
		t.Fatalf("Release(%s, %s): %v", name, owner, err)
	}
}

func cursorOf(t *testing.T, s llmscope.Leaser, name string) int64 {
	t.Helper()
	seq, err := s.(llmscope.Store).Cursor(t.Context(), name)
	if err != nil {
		t.Fatalf("Cursor(%s): %v", name, err)
	}
	return seq
}

// testLeaseAcquireRenewRefuse: a free lease goes to the first owner, who
// renews it; another owner is refused; other names are independent.
func testLeaseAcquireRenewRefuse(t *testing.T, s llmscope.Leaser) {
	lease(t, s, "export:a", "one", time.Minute, true)
	lease(t, s, "export:a", "one", time.Minute, true)
	lease(t, s, "export:a", "two", time.Minute, false)
	lease(t, s, "export:b", "two", time.Minute, true)
	lease(t, s, "export:b", "one", time.Minute, false)
	lease(t, s, "export:a", "one", time.Minute, true)
}

// testLeaseExpiry: a lease not renewed expires after its ttl and goes to the
// next owner asking, who then keeps it against the former owner; renewing
// pushes the expiry out.
func testLeaseExpiry(t *testing.T, s llmscope.Leaser) {
	lease(t, s, "export:a", "one", shortTTL, true)
	lease(t, s, "export:a", "two", shortTTL, false)
	// Renewed at about half its ttl, it outlives the first expiry.
	time.Sleep(shortTTL / 2)
	lease(t, s, "export:a", "one", shortTTL, true)
	time.Sleep(shortTTL/2 + 50*time.Millisecond)
	lease(t, s, "export:a", "two", shortTTL, false)
	time.Sleep(expired)
	lease(t, s, "export:a", "two", time.Minute, true)
	lease(t, s, "export:a", "one", time.Minute, false)
}

// testLeaseRelease: Release frees the owner's lease at once, and does
// nothing when asked by anyone else.
func testLeaseRelease(t *testing.T, s llmscope.Leaser) {
	lease(t, s, "export:a", "one", time.Minute, true)
	release(t, s, "export:a", "two")
	lease(t, s, "export:a", "two", time.Minute, false)
	release(t, s, "export:a", "one")
	lease(t, s, "export:a", "two", time.Minute, true)
	lease(t, s, "export:a", "one", time.Minute, false)
	release(t, s, "export:never", "one") // a lease never taken: nothing to do
}

// testLeaseRace: owners asking for a free lease at once get it exactly once.
func testLeaseRace(t *testing.T, s llmscope.Leaser) {
	for round := range 5 {
		name := fmt.Sprintf("export:race%d", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		for i := range 8 {
			owner := fmt.Sprintf("owner%d", i)
			wg.Go(func() {
				held, err := s.Lease(t.Context(), name, owner, time.Minute)
				if err != nil {
					t.Errorf("Lease(%s, %s): %v", name, owner, err)
					return
				}
				if held {
					mu.Lock()
					winners = append(winners, owner)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("%s: held by %v at once, want exactly one owner", name, winners)
		}
	}
}

// testSetCursorLeased: the holder moves the cursor; another owner, an owner
// whose lease expired and one who released it are refused with ErrLeaseLost
// and move nothing.
func testSetCursorLeased(t *testing.T, s llmscope.Leaser) {
	ctx := t.Context()
	if err := s.SetCursorLeased(ctx, "export:a", "one", "a", 5); !errors.Is(err, llmscope.ErrLeaseLost) {
		t.Fatalf("SetCursorLeased without any lease = %v, want ErrLeaseLost", err)
	}
	if got := cursorOf(t, s, "a"); got != 0 {
		t.Fatalf("cursor moved to %d without a lease", got)
	}
	lease(t, s, "export:a", "one", shortTTL, true)
	if err := s.SetCursorLeased(ctx, "export:a", "one", "a", 7); err != nil {
		t.Fatalf("SetCursorLeased by the holder: %v", err)
	}
	if err := s.SetCursorLeased(ctx, "export:a", "one", "a", 9); err != nil {
		t.Fatalf("SetCursorLeased by the holder: %v", err)
	}
	if err := s.SetCursorLeased(ctx, "export:a", "two", "a", 100); !errors.Is(err, llmscope.ErrLeaseLost) {
		t.Fatalf("SetCursorLeased by another owner = %v, want ErrLeaseLost", err)
	}
	if got := cursorOf(t, s, "a"); got != 9 {
		t.Fatalf("cursor = %d, want 9", got)
	}
	time.Sleep(expired)
	if err := s.SetCursorLeased(ctx, "export:a", "one", "a", 11); !errors.Is(err, llmscope.ErrLeaseLost) {
		t.Fatalf("SetCursorLeased after the lease expired = %v, want ErrLeaseLost", err)
	}
	lease(t, s, "export:a", "one", time.Minute, true)
	release(t, s, "export:a", "one")
	if err := s.SetCursorLeased(ctx, "export:a", "one", "a", 12); !errors.Is(err, llmscope.ErrLeaseLost) {
		t.Fatalf("SetCursorLeased after Release = %v, want ErrLeaseLost", err)
	}
	if got := cursorOf(t, s, "a"); got != 9 {
		t.Fatalf("cursor = %d after refused writes, want 9", got)
	}
}

// testSetCursorLeasedAfterTakeover: once another owner took an expired
// lease over, the former holder can move the cursor neither back nor
// forward, and the new holder can.
func testSetCursorLeasedAfterTakeover(t *testing.T, s llmscope.Leaser) {
	ctx := t.Context()
	lease(t, s, "export:a", "one", shortTTL, true)
	if err := s.SetCursorLeased(ctx, "export:a", "one", "a", 10); err != nil {
		t.Fatal(err)
	}
	time.Sleep(expired)
	lease(t, s, "export:a", "two", time.Minute, true)
	if err := s.SetCursorLeased(ctx, "export:a", "two", "a", 20); err != nil {
		t.Fatalf("SetCursorLeased by the new holder: %v", err)
	}
	for _, seq := range []int64{5, 30} {
		if err := s.SetCursorLeased(ctx, "export:a", "one", "a", seq); !errors.Is(err, llmscope.ErrLeaseLost) {
			t.Fatalf("SetCursorLeased(%d) by the former holder = %v, want ErrLeaseLost", seq, err)
		}
	}
	if got := cursorOf(t, s, "a"); got != 20 {
		t.Fatalf("cursor = %d, want the new holder's 20", got)
	}
	// The lease of one exporter does not fence another's cursor.
	lease(t, s, "export:b", "one", time.Minute, true)
	if err := s.SetCursorLeased(ctx, "export:b", "one", "b", 3); err != nil {
		t.Fatal(err)
	}
	if got := cursorOf(t, s, "a"); got != 20 {
		t.Fatalf("cursor a = %d after writing b, want 20", got)
	}
}

// testSetCursorLeasedRace: while the holder writes the cursor as fast as it
// can, another owner takes the lease over the moment it expires and reads
// the cursor; no write of the former holder lands after that read.
func testSetCursorLeasedRace(t *testing.T, s llmscope.Leaser) {
	ctx := t.Context()
	for round := range 3 {
		name, cursor := fmt.Sprintf("export:race%d", round), fmt.Sprintf("race%d", round)
		lease(t, s, name, "one", shortTTL, true)
		var landed atomic.Int64 // the last seq the former holder wrote
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for seq := int64(1); ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				err := s.SetCursorLeased(ctx, name, "one", cursor, seq)
				switch {
				case err == nil:
					landed.Store(seq)
				case !errors.Is(err, llmscope.ErrLeaseLost):
					t.Errorf("SetCursorLeased: %v", err)
					return
				}
			}
		}()
		for {
			held, err := s.Lease(ctx, name, "two", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if held {
				break
			}
			time.Sleep(time.Millisecond)
		}
		read := cursorOf(t, s, cursor)
		time.Sleep(50 * time.Millisecond)
		close(stop)
		<-done
		if last := landed.Load(); last > read {
			t.Errorf("round %d: the former holder's write of %d landed after the new holder read the cursor at %d", round, last, read)
		}
		if got := cursorOf(t, s, cursor); got != read {
			t.Errorf("round %d: cursor %d after the takeover, want %d as the new holder read it", round, got, read)
		}
	}
}
