package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPostgresOutageUnderLoad stops the PostgreSQL server under a `serve`
// for 20 s while calls keep coming, then starts it again: every call
// answered 200 is stored, exactly once, and /healthz said so meanwhile
// (degraded during the outage, ok after).
func TestPostgresOutageUnderLoad(t *testing.T) {
	srv := startPostgres(t)
	url, err := srv.CreateDB(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cmd, base, _, stderr := startServe(t, "--db", url, "--commit-wait", "20ms")

	var (
		mu       sync.Mutex
		answered = map[string]bool{}
		failed   int
	)
	send := func(i int) {
		body := fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%t,"messages":[{"role":"user","content":"outage %d"}]}`, i%2 == 0, i)
		resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed++
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failed++
			return
		}
		answered[resp.Header.Get("X-Llmscope-Call-Id")] = true
	}
	health := func() int {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// Traffic at about 50 calls/s for the whole test, from 4 clients.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var next int
	var nextMu sync.Mutex
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(80 * time.Millisecond):
				}
				nextMu.Lock()
				i := next
				next++
				nextMu.Unlock()
				send(i)
			}
		}()
	}
	time.Sleep(2 * time.Second)
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	haltedAt := time.Now()
	degraded := false
	for time.Since(haltedAt) < 20*time.Second {
		if health() == http.StatusServiceUnavailable {
			degraded = true
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	mu.Lock()
	n := len(answered)
	mu.Unlock()
	if failed != 0 {
		t.Errorf("%d calls not answered 200 while PostgreSQL was down: the gateway must keep answering", failed)
	}
	if !degraded {
		t.Errorf("/healthz never said degraded during the 20 s outage")
	}
	// Everything held in memory reaches the store once it is back.
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(60 * time.Second)
	var stored, distinct int
	for {
		if err := conn.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT id) FROM calls`).Scan(&stored, &distinct); err != nil {
			t.Fatal(err)
		}
		if stored >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if stored != distinct {
		t.Errorf("%d rows for %d distinct calls: some stored twice", stored, distinct)
	}
	missing := 0
	for id := range answered {
		var one int
		if err := conn.QueryRow(t.Context(), `SELECT 1 FROM calls WHERE id = $1`, id).Scan(&one); err != nil {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d answered calls not stored after PostgreSQL came back", missing, n)
	}
	for deadline := time.Now().Add(30 * time.Second); health() != http.StatusOK; {
		if time.Now().After(deadline) {
			t.Errorf("/healthz not ok 30 s after PostgreSQL came back")
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d calls answered through a 20 s PostgreSQL outage, %d stored, %d distinct", n, stored, distinct)
	if t.Failed() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log := stderr.String()
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		t.Logf("serve's log (end):\n%s", log)
	}
}
