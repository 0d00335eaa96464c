package web_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"llmscope"
	"llmscope/auth"
	"llmscope/sqlite"
	"llmscope/web"
)

// TestClientListFollowsPages: Client.List reads calls as Store.List does,
// texts included, across the pages the API's size bound makes, and sends
// the admin token.
func TestClientListFollowsPages(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	var calls []*llmscope.Call
	for i := range 12 { // 12 MiB of texts: more than one answer holds
		id := llmscope.NewID()
		calls = append(calls, &llmscope.Call{ID: id, TraceID: llmscope.TraceIDFor(id), Start: now.Add(time.Duration(i) * time.Second),
			Operation: "chat", Output: strings.Repeat("o", 1<<20), Tags: map[string]string{}})
	}
	if err := store.Write(ctx, calls); err != nil {
		t.Fatal(err)
	}
	const token = "client-admin-token-0123"
	h := auth.HashToken(token)
	guard, err := auth.New(auth.Config{AdminTokenHash: &h})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(guard.Wrap(web.New(store, nil, nil)))
	defer srv.Close()

	if _, err := (&web.Client{Base: srv.URL}).List(ctx, llmscope.Filter{Limit: 12}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("List without the token: %v, want a 401", err)
	}
	c := &web.Client{Base: srv.URL, Token: token}
	got, err := c.List(ctx, llmscope.Filter{Limit: 12})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 12 {
		t.Fatalf("List gave %d calls, want 12", len(got))
	}
	for i, g := range got {
		if want := calls[11-i]; g.ID != want.ID || len(g.Output) != 1<<20 {
			t.Errorf("call %d: %s with %d bytes of output, want %s with its 1 MiB", i, g.ID, len(g.Output), want.ID)
		}
	}
	lean, err := c.List(ctx, llmscope.Filter{Limit: 5, OmitText: true})
	if err != nil || len(lean) != 5 || lean[0].Output != "" {
		t.Errorf("List with OmitText: %d calls, err %v", len(lean), err)
	}
}
