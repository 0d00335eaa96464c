package sweep

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Item is one dataset row: the messages sent and the answer expected.
type Item struct {
	// ID identifies the item across runs of the sweep: the row's "id", or
	// "line-N" when it has none.
	ID       string
	Messages []Message
	// Expected is the reference answer; nil when the row has none (then
	// only json_valid can score it).
	Expected *string
	// Hash identifies the content (messages and expected answer): a
	// resumed sweep sends an item again when it has changed.
	Hash string
}

// hash returns the hash of the item's content.
func (it Item) hash() string {
	b, _ := json.Marshal(struct {
		M []Message
		E *string
	}{it.Messages, it.Expected})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}

// Message is one chat message of an item.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// maxRow caps one dataset line.
const maxRow = 16 << 20

// LoadDataset reads a JSONL dataset. Each line is an object with "prompt"
// (a user message) or "messages" (a chat), and optionally "expected" and
// "id". Blank lines are skipped. Errors name the file, the line and the
// field.
func LoadDataset(path string) ([]Item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	return ReadDataset(f, path)
}

// ReadDataset reads a JSONL dataset from r; name names it in errors.
func ReadDataset(r io.Reader, name string) ([]Item, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxRow)
	var items []Item
	seen := map[string]int{}
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		it, err := parseRow(b, line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if first, dup := seen[it.ID]; dup {
			return nil, fmt.Errorf("%s:%d: id: %q is also the id of line %d", name, line, it.ID, first)
		}
		seen[it.ID] = line
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: no items", name)
	}
	return items, nil
}

func parseRow(b []byte, line int) (Item, error) {
	var row struct {
		ID       json.RawMessage `json:"id"`
		Prompt   *string         `json:"prompt"`
		Messages []Message       `json:"messages"`
		Expected json.RawMessage `json:"expected"`
	}
	if err := json.Unmarshal(b, &row); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Item{}, fmt.Errorf("%s: want %s, got a JSON %s", te.Field, te.Type, te.Value)
		}
		return Item{}, fmt.Errorf("not a JSON object: %w", err)
	}
	it := Item{ID: "line-" + strconv.Itoa(line)}
	if len(row.ID) > 0 && string(row.ID) != "null" {
		var s string
		var n json.Number
		switch {
		case json.Unmarshal(row.ID, &s) == nil:
		case json.Unmarshal(row.ID, &n) == nil:
			s = n.String()
		default:
			return Item{}, fmt.Errorf("id: want a string or a number")
		}
		if s == "" || strings.ContainsAny(s, ",=\r\n") {
			return Item{}, fmt.Errorf("id: %q: an id is not empty and holds no ',', '=' or line break", s)
		}
		it.ID = s
	}
	switch {
	case row.Prompt != nil && row.Messages != nil:
		return Item{}, fmt.Errorf("prompt and messages: give one, not both")
	case row.Prompt != nil:
		if *row.Prompt == "" {
			return Item{}, fmt.Errorf("prompt: empty")
		}
		it.Messages = []Message{{Role: "user", Content: *row.Prompt}}
	case len(row.Messages) > 0:
		for i, m := range row.Messages {
			switch m.Role {
			case "system", "developer", "user", "assistant":
			default:
				return Item{}, fmt.Errorf("messages[%d].role: %q is not system, developer, user or assistant", i, m.Role)
			}
		}
		it.Messages = row.Messages
	default:
		return Item{}, fmt.Errorf("prompt or messages: missing")
	}
	if len(row.Expected) > 0 && string(row.Expected) != "null" {
		var s string
		if err := json.Unmarshal(row.Expected, &s); err != nil {
			return Item{}, fmt.Errorf("expected: want a string")
		}
		it.Expected = &s
	}
	it.Hash = it.hash()
	return it, nil
}
