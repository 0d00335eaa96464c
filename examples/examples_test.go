package examples_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"llmscope"
	"llmscope/sim"
	"llmscope/sqlite"
)

// TestExamplesRunAgainstSim runs each example against the simulator, without
// an API key, and checks that its call was recorded.
func TestExamplesRunAgainstSim(t *testing.T) {
	up := httptest.NewServer(sim.New(sim.Config{}))
	defer up.Close()
	for _, name := range []string{"openai-go", "go-openai"} {
		t.Run(name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "calls.db")
			cmd := exec.Command("go", "run", "./"+name)
			cmd.Env = append(os.Environ(), "OPENAI_BASE_URL="+up.URL+"/v1", "OPENAI_API_KEY=", "LLMSCOPE_DB="+db)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if len(strings.TrimSpace(string(out))) < 10 {
				t.Errorf("example printed %q", out)
			}
			store, err := sqlite.Open(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			calls, err := store.List(context.Background(), llmscope.Filter{})
			if err != nil || len(calls) != 1 || calls[0].Run != "example-"+name || calls[0].Usage.Source != llmscope.UsageReported {
				t.Errorf("recorded %+v (%v)", calls, err)
			}
		})
	}
}
