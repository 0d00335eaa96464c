package pricing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// UpdatedFormat names the format of the updated file.
const UpdatedFormat = "llmscope-prices/1"

// Updated is the file `llmscope prices update` writes: the prices converted
// from LiteLLM's file, with where and when they were fetched.
type Updated struct {
	Format  string    `json:"format"`
	URL     string    `json:"url"`
	Fetched time.Time `json:"fetched"`
	Models  []Price   `json:"models"`
	Table   *Table    `json:"-"`
}

// FetchedDate is the fetch date as YYYY-MM-DD (UTC).
func (u *Updated) FetchedDate() string { return u.Fetched.UTC().Format(time.DateOnly) }

// DefaultUpdatedPath is where the updated file lives unless told otherwise:
// llmscope/prices.json in the user's configuration directory
// ($XDG_CONFIG_HOME, else ~/.config, on Linux). It returns "" when there is
// no such directory.
func DefaultUpdatedPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "llmscope", "prices.json")
}

// ReadUpdated reads an updated file. A missing file gives an error that
// matches os.ErrNotExist.
func ReadUpdated(path string) (*Updated, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("updated prices: %w", err)
	}
	var u Updated
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("updated prices %s: %w", path, err)
	}
	if u.Format != UpdatedFormat {
		return nil, fmt.Errorf("updated prices %s: format %q, want %q (run llmscope prices update again)", path, u.Format, UpdatedFormat)
	}
	t, err := newTable(u.Models, path)
	if err != nil {
		return nil, fmt.Errorf("updated prices %s: %w", path, err)
	}
	u.Table = t
	return &u, nil
}

// UpdateOptions tune Update.
type UpdateOptions struct {
	URL       string       // LiteLLMURL when empty
	Client    *http.Client // http.DefaultClient when nil; its Timeout or ctx bounds the fetch
	MinModels int          // fewer converted models than this fail the update; 100 when 0
	MaxBytes  int64        // a larger body fails the update; 64 MiB when 0
	Now       func() time.Time
}

// Update fetches LiteLLM's price file, validates and converts it (see
// FromLiteLLM), and writes the result to path atomically: a temporary file
// in the same directory renamed over path. On any failure path is left as
// it was.
func Update(ctx context.Context, path string, opt UpdateOptions) (*Updated, error) {
	if opt.URL == "" {
		opt.URL = LiteLLMURL
	}
	if opt.Client == nil {
		opt.Client = http.DefaultClient
	}
	if opt.MinModels == 0 {
		opt.MinModels = 100
	}
	if opt.MaxBytes == 0 {
		opt.MaxBytes = 64 << 20
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	body, err := fetch(ctx, opt)
	if err != nil {
		return nil, err
	}
	now := opt.Now().UTC().Truncate(time.Second)
	models, err := FromLiteLLM(body, LiteLLMOptions{Source: "litellm", AsOf: now.Format(time.DateOnly)})
	if err != nil {
		return nil, err
	}
	if len(models) < opt.MinModels {
		return nil, fmt.Errorf("litellm prices: only %d models of OpenAI, Anthropic and Gemini, want at least %d", len(models), opt.MinModels)
	}
	u := &Updated{Format: UpdatedFormat, URL: opt.URL, Fetched: now, Models: models}
	if u.Table, err = newTable(models, path); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(u, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode prices: %w", err)
	}
	if err := writeAtomic(path, append(b, '\n')); err != nil {
		return nil, err
	}
	return u, nil
}

func fetch(ctx context.Context, opt UpdateOptions) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, opt.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch prices: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := opt.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch prices: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch prices %s: HTTP %s", opt.URL, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, opt.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch prices %s: %w", opt.URL, err)
	}
	if int64(len(b)) > opt.MaxBytes {
		return nil, fmt.Errorf("fetch prices %s: larger than %d bytes", opt.URL, opt.MaxBytes)
	}
	return b, nil
}

// writeAtomic writes b to path through a temporary file renamed over it, so
// readers see the old file or the new one, never a part.
func writeAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write prices: %w", err)
	}
	f, err := os.CreateTemp(dir, ".prices-*.tmp")
	if err != nil {
		return fmt.Errorf("write prices: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write prices: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write prices: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write prices: %w", err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("write prices: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write prices: %w", err)
	}
	return nil
}

// ErrNoPath is returned when there is nowhere to write the updated file.
var ErrNoPath = errors.New("no path for the updated prices file (set LLMSCOPE_PRICES_CACHE or --out)")
