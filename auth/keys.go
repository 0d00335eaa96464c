package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"llmscope"

	"go.yaml.in/yaml/v3"
)

// Key is one client key: the name recorded as the user of its calls and
// the SHA-256 of the key itself.
type Key struct {
	Name string
	Hash [32]byte
}

// Keys is a set of client keys, looked up by the hash of a presented key.
// It is immutable and safe for concurrent use.
type Keys struct {
	keys   []Key
	byHash map[[32]byte]int               // index into keys
	client map[string]*llmscope.ClientKey // by name: what requests' contexts carry
}

// maxKeyName bounds a key's name, which becomes a recorded user.
const maxKeyName = 64

// NewKeys returns the set of keys, refusing empty, malformed or duplicate
// names and duplicate hashes.
func NewKeys(keys ...Key) (*Keys, error) {
	keys = append([]Key(nil), keys...)
	k := &Keys{keys: keys, byHash: make(map[[32]byte]int, len(keys)), client: make(map[string]*llmscope.ClientKey, len(keys))}
	names := make(map[string]bool, len(keys))
	for i, key := range keys {
		if err := checkName(key.Name); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if names[key.Name] {
			return nil, fmt.Errorf("key %d %q: duplicate name", i, key.Name)
		}
		if other, dup := k.byHash[key.Hash]; dup {
			return nil, fmt.Errorf("key %d %q: same sha256 as %q", i, key.Name, keys[other].Name)
		}
		names[key.Name] = true
		k.byHash[key.Hash] = i
		k.client[key.Name] = &llmscope.ClientKey{Name: key.Name}
	}
	return k, nil
}

// Lookup returns the name of the key token, if it is one. The token is
// hashed and the hash looked up: what a lookup's timing could reveal is
// about hashes, from which no key can be recovered. The hash found is
// compared again in constant time.
func (k *Keys) Lookup(token string) (name string, ok bool) {
	if k == nil || token == "" {
		return "", false
	}
	h := sha256.Sum256([]byte(token))
	i, ok := k.byHash[h]
	if !ok || subtle.ConstantTimeCompare(k.keys[i].Hash[:], h[:]) != 1 {
		return "", false
	}
	return k.keys[i].Name, true
}

// clientKey returns the ClientKey of the key named name (Lookup's), shared
// by its requests.
func (k *Keys) clientKey(name string) *llmscope.ClientKey { return k.client[name] }

// Len returns the number of keys.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.keys)
}

// Names returns the keys' names, sorted.
func (k *Keys) Names() []string {
	if k == nil {
		return nil
	}
	out := make([]string, 0, len(k.keys))
	for _, key := range k.keys {
		out = append(out, key.Name)
	}
	sort.Strings(out)
	return out
}

// checkName accepts 1 to 64 printable ASCII characters other than space
// and comma.
func checkName(n string) error {
	if n == "" {
		return errors.New("name is empty")
	}
	if len(n) > maxKeyName {
		return fmt.Errorf("name is longer than %d characters", maxKeyName)
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c <= ' ' || c >= 0x7f || c == ',' {
			return errors.New("name must be printable ASCII without spaces or commas")
		}
	}
	return nil
}

// LoadClientKeys reads a YAML file of client keys:
//
//	keys:
//	  - name: alice
//	    sha256: <64 hex digits, optionally prefixed sha256:>
//
// Unknown fields, empty or malformed names, duplicate names or hashes and
// malformed hashes are errors naming the file, the entry and the fault.
func LoadClientKeys(path string) (*Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read client keys: %w", err)
	}
	keys, err := parseClientKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

func parseClientKeys(b []byte) (*Keys, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no keys")
		}
		return nil, fmt.Errorf("parse: %w", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping with keys", root.Line)
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "keys" {
			return nil, fmt.Errorf("line %d: unknown field %q (want keys)", k.Line, k.Value)
		}
		list = v
	}
	if list == nil || list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
		return nil, errors.New("no keys")
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: keys must be a list", list.Line)
	}
	if len(list.Content) == 0 {
		return nil, errors.New("no keys")
	}
	var (
		keys  = make([]Key, 0, len(list.Content))
		names = map[string]int{} // name → line
		seen  = map[[32]byte]string{}
	)
	for i, e := range list.Content {
		where := fmt.Sprintf("keys[%d] (line %d)", i, e.Line)
		if e.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: want a mapping with name and sha256", where)
		}
		var name, hash *yaml.Node
		for j := 0; j+1 < len(e.Content); j += 2 {
			k, v := e.Content[j], e.Content[j+1]
			switch k.Value {
			case "name":
				if name != nil {
					return nil, fmt.Errorf("%s: name given twice", where)
				}
				name = v
			case "sha256":
				if hash != nil {
					return nil, fmt.Errorf("%s: sha256 given twice", where)
				}
				hash = v
			default:
				return nil, fmt.Errorf("%s: unknown field %q (want name, sha256)", where, k.Value)
			}
		}
		if name == nil || name.Kind != yaml.ScalarNode || name.Tag == "!!null" {
			return nil, fmt.Errorf("%s: name is missing", where)
		}
		if err := checkName(name.Value); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		where = fmt.Sprintf("keys[%d] %q (line %d)", i, name.Value, e.Line)
		if first, dup := names[name.Value]; dup {
			return nil, fmt.Errorf("%s: duplicate name (first at line %d)", where, first)
		}
		names[name.Value] = e.Line
		if hash == nil || hash.Kind != yaml.ScalarNode || hash.Tag == "!!null" {
			return nil, fmt.Errorf("%s: sha256 is missing", where)
		}
		h, err := ParseHash(hash.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: sha256: %w", where, err)
		}
		if other, dup := seen[h]; dup {
			return nil, fmt.Errorf("%s: same sha256 as %q", where, other)
		}
		seen[h] = name.Value
		keys = append(keys, Key{Name: name.Value, Hash: h})
	}
	return NewKeys(keys...)
}
