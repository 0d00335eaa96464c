package chat

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"llmscope/sim"
)

type scripted struct{ lines []string }

func (s *scripted) ReadLine() (string, error) {
	if len(s.lines) == 0 {
		return "", io.EOF
	}
	l := s.lines[0]
	s.lines = s.lines[1:]
	return l, nil
}

// TestErrorsLeaveTheSessionGoing: a rate limit (with its retry-after), a
// server error and a network failure are shown plainly and the next prompt
// still works, with the context of the turns that succeeded.
func TestErrorsLeaveTheSessionGoing(t *testing.T) {
	up := sim.New(sim.Config{})
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			r.Header.Set("X-Sim-Fault", "status=429")
		case 2:
			r.Header.Set("X-Sim-Fault", "status=500")
		}
		up.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s := New(Config{BaseURL: srv.URL + "/v1", APIKey: "k", Settings: Settings{Model: "gpt-4o-mini"}})
	var out bytes.Buffer
	if err := s.Run(&scripted{[]string{"one", "two", "three", "/history"}}, &out, Hooks{}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"! upstream said 429", "retry after 1s", "! upstream said 500", "user: three"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if len(s.Turns) != 3 || s.Turns[2].Error != "" || s.Turns[2].Reply == "" {
		t.Errorf("turns: %+v", s.Turns)
	}
	if strings.Contains(got, "user: one") {
		t.Errorf("a failed turn entered the conversation:\n%s", got)
	}

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	down := New(Config{BaseURL: "http://" + addr + "/v1", APIKey: "k", Settings: Settings{Model: "m"}})
	out.Reset()
	_ = down.Run(&scripted{[]string{"hello"}}, &out, Hooks{})
	if !strings.Contains(out.String(), "! request failed") {
		t.Errorf("network failure shown as %q", out.String())
	}
}
