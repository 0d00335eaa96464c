package loadtest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestParseStat(t *testing.T) {
	line := "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 100 0 0\n"
	got, err := parseStat([]byte(line))
	if err != nil || got != 3250*time.Millisecond {
		t.Errorf("parseStat = %v, %v; want 3.25s", got, err)
	}
	if _, err := parseStat([]byte("4242 (x) S 1")); err == nil {
		t.Error("short stat accepted")
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tllmscope\nVmPeak:\t 9000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n"
	m, err := parseStatus([]byte(status))
	if err != nil || m.RSS != 40<<20 || m.Peak != 50<<20 {
		t.Errorf("parseStatus = %+v, %v", m, err)
	}
	if _, err := parseStatus([]byte("Name:\tx\n")); err == nil {
		t.Error("status without VmRSS accepted")
	}
}

func TestParseSystemStat(t *testing.T) {
	got, err := parseSystemStat([]byte("cpu  100 5 50 9000 40 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	if want := (SystemTimes{Busy: 161 * clockTick, IOWait: 40 * clockTick, Steal: clockTick}); err != nil || got != want {
		t.Errorf("parseSystemStat = %+v, %v; want %+v", got, err, want)
	}
}

func TestProbesOfThisProcess(t *testing.T) {
	pid := os.Getpid()
	before, err := CPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	// burn CPU until the tick counter moves
	x := 0
	for i := 0; ; i++ {
		x += i * i
		if i%1_000_000 == 0 {
			if now, err := CPUTime(pid); err != nil || now > before {
				break
			}
		}
	}
	_ = x
	m, err := ReadMemory(pid)
	if err != nil || m.RSS == 0 || m.Peak < m.RSS {
		t.Errorf("memory %+v, %v", m, err)
	}
	if err := ResetPeak(pid); err != nil {
		t.Logf("peak reset unavailable here: %v", err)
	}
	if _, err := SystemCPU(); err != nil {
		t.Error(err)
	}
	if err := Settle(context.Background(), 2*time.Second, pid); err != nil {
		t.Error(err)
	}
	if _, err := CPUTime(1 << 30); err == nil {
		t.Error("cpu time of a missing process")
	}
}

func TestOTLPSink(t *testing.T) {
	sink := &OTLPSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{Name: "a"}, {Name: "b"}, {Name: "c"}}}},
	}}}
	body, _ := proto.Marshal(req)
	resp, err := http.Post(srv.URL+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out coltracepb.ExportTraceServiceResponse
	if resp.StatusCode != 200 || proto.Unmarshal(b, &out) != nil || resp.Header.Get("Content-Type") != "application/x-protobuf" {
		t.Errorf("answer %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	resp, err = http.Post(srv.URL+"/v1/traces", "application/x-protobuf", bytes.NewReader([]byte{0xff, 0xff}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st := sink.Stats(); st.Requests != 2 || st.Spans != 3 || st.Malformed != 1 || st.Bytes != uint64(len(body)+2) {
		t.Errorf("stats %+v", st)
	}
}

func TestStartProcess(t *testing.T) {
	ctx := context.Background()
	p, err := StartProcess(ctx, "fake", "/bin/sh", []string{"-c", "echo booting; echo >&2 warming; echo 'fake: listening on http://127.0.0.1:9/v1 (ok)'; exec sleep 60"}, t.TempDir(), nil, "listening on")
	if err != nil {
		t.Fatal(err)
	}
	if p.URL != "http://127.0.0.1:9/v1" || p.PID == 0 || p.Alive() != nil {
		t.Errorf("url %q pid %d alive %v", p.URL, p.PID, p.Alive())
	}
	_ = p.Stop(5 * time.Second) // SIGTERM ends sleep: an exit by signal
	if p.Alive() == nil {
		t.Error("alive after Stop")
	}
	if p.Stderr() != "warming\n" {
		t.Errorf("stderr %q", p.Stderr())
	}

	_, err = StartProcess(ctx, "broken", "/bin/sh", []string{"-c", "echo >&2 no such flag; exit 2"}, t.TempDir(), nil, "listening on")
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("no such flag")) {
		t.Errorf("early exit: %v", err)
	}
}
