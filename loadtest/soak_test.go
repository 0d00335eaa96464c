package loadtest

import (
	"context"
	"os"
	"testing"
	"time"
)

// self is a Process standing for this test process, which serves the
// requests itself.
func self() *Process {
	return &Process{Name: "self", PID: os.Getpid(), done: make(chan struct{}), stderr: &tail{max: 64}}
}

func TestSoakSamplesMemoryAndCountsEveryRequest(t *testing.T) {
	srv := chatServer(t, nil)
	target := Target{Scenario: "gateway", URL: srv.URL + "/v1", Front: self(), Upstream: self()}
	rep, err := Soak(context.Background(), SoakConfig{
		Target: target, Kinds: []Kind{Kinds[0], Kinds[2]}, Rate: 100, Duration: time.Second, Interval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 100 || rep.Errors != 0 || rep.Latency.Count != 100 || rep.TTFT == nil || rep.TTFT.Count != 50 {
		t.Errorf("requests %d errors %d timed %d ttft %+v", rep.Requests, rep.Errors, rep.Latency.Count, rep.TTFT)
	}
	// the first and last samples are taken around the run; the ticker adds the rest
	if len(rep.Samples) < 2 {
		t.Fatalf("%d samples", len(rep.Samples))
	}
	var sum uint64
	for _, s := range rep.Samples {
		if s.RSSMB <= 0 {
			t.Errorf("sample %+v without RSS", s)
		}
		sum += s.Requests
	}
	if sum > rep.Requests {
		t.Errorf("samples count %d requests, more than the %d sent", sum, rep.Requests)
	}
}

func TestSoakNeedsAFrontProcess(t *testing.T) {
	if _, err := Soak(context.Background(), SoakConfig{Target: Target{Upstream: self()}, Kinds: Kinds, Rate: 1, Duration: time.Second}); err == nil {
		t.Error("soak without a front process accepted")
	}
}
