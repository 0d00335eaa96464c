package tokenizer

import (
	"encoding/base64"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"

	"github.com/pkoukk/tiktoken-go-loader/assets"
)

// bpe is one encoding: its byte-pair ranks and its pre-tokenizer. A token's
// rank is also its id, and every single byte is a token.
type bpe struct {
	table []entry // open addressing, linear probing; len is a power of two
	shift uint    // 64 - log2(len(table)): a hash's top bits index table
	arena string  // the bytes of every token, back to back
	pair  []rank  // pair[a<<8|b] is the rank of the two bytes a, b, or none
	piece func(string) int
}

// rank is a token's rank; none marks a byte string that is not a token.
type rank = uint32

const none rank = 1<<32 - 1

// entry is one token in bpe.table. The zero entry is an empty slot.
type entry struct {
	key  uint64 // the first 8 bytes of the token, little-endian, zero-padded
	rank rank
	ref  uint32 // offset of the token in arena << 8 | its length (1 to 255)
}

// The vocabularies are OpenAI's .tiktoken files, embedded in the binary by
// tiktoken-go-loader; nothing is downloaded.
func loadBPE(file string, piece func(string) int) func() (*bpe, error) {
	return sync.OnceValues(func() (*bpe, error) {
		data, err := assets.Assets.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", file, err)
		}
		b, err := newBPE(string(data), piece)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", file, err)
		}
		return b, nil
	})
}

var encodings = map[string]func() (*bpe, error){
	O200kBase:  loadBPE("o200k_base.tiktoken", o200kPiece),
	Cl100kBase: loadBPE("cl100k_base.tiktoken", cl100kPiece),
}

// newBPE builds the lookup tables of a vocabulary in the .tiktoken format:
// one line per token, its bytes in base64, a space and its rank.
func newBPE(data string, piece func(string) int) (*bpe, error) {
	lines := strings.Count(data, "\n") + 1
	logSize := bits.Len(uint(lines)*2 - 1)
	b := &bpe{
		table: make([]entry, 1<<logSize),
		shift: uint(64 - logSize),
		pair:  make([]rank, 1<<16),
		piece: piece,
	}
	for i := range b.pair {
		b.pair[i] = none
	}
	type token struct{ start, end, rank uint32 }
	tokens := make([]token, 0, lines)
	arena := make([]byte, 0, len(data)*3/4)
	for line := range strings.Lines(data) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		b64, num, ok := strings.Cut(line, " ")
		r, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || rank(r) == none {
			return nil, fmt.Errorf("bad line %q", line)
		}
		start := len(arena)
		arena, err = base64.StdEncoding.AppendDecode(arena, []byte(b64))
		if n := len(arena) - start; err != nil || n == 0 || n > 255 || start >= 1<<24 {
			return nil, fmt.Errorf("bad token in line %q", line)
		}
		tokens = append(tokens, token{uint32(start), uint32(len(arena)), uint32(r)})
	}
	b.arena = string(arena)
	mask := len(b.table) - 1
	for _, tok := range tokens {
		t := b.arena[tok.start:tok.end]
		if len(t) == 2 {
			b.pair[int(t[0])<<8|int(t[1])] = tok.rank
		}
		if b.lookup(t) != none {
			return nil, fmt.Errorf("token %q twice", t)
		}
		key := load8(t)
		i := int(hash(key, t) >> b.shift)
		for b.table[i].ref != 0 {
			i = (i + 1) & mask
		}
		b.table[i] = entry{key: key, rank: tok.rank, ref: tok.start<<8 | uint32(len(t))}
	}
	for c := range 256 { // merging starts from single bytes
		if b.lookup(string([]byte{byte(c)})) == none {
			return nil, fmt.Errorf("byte %#x is not a token", c)
		}
	}
	return b, nil
}

// load8 returns the first 8 bytes of s, little-endian, zero-padded.
func load8(s string) uint64 {
	switch n := len(s); {
	case n >= 8:
		return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	case n >= 4: // two overlapping loads
		lo := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24
		t := s[n-4:]
		hi := uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24
		return lo | hi<<(8*(n-4))
	case n >= 2:
		t := s[n-2:]
		return uint64(s[0]) | uint64(s[1])<<8 | (uint64(t[0])|uint64(t[1])<<8)<<(8*(n-2))
	case n == 1:
		return uint64(s[0])
	}
	return 0
}

// hash returns the hash of s, whose first 8 bytes are key.
func hash(key uint64, s string) uint64 {
	const m = 0x9E3779B97F4A7C15
	h := (key ^ uint64(len(s))<<58) * m
	for s = s[min(8, len(s)):]; len(s) > 0; s = s[min(8, len(s)):] {
		h = (h ^ h>>29 ^ load8(s)) * m
	}
	return h
}

// lookup returns the rank of the token s, or none.
func (b *bpe) lookup(s string) rank {
	key := load8(s)
	mask := len(b.table) - 1
	for i := int(hash(key, s) >> b.shift); ; i = (i + 1) & mask {
		e := &b.table[i]
		if e.ref == 0 {
			return none
		}
		if e.key == key && int(e.ref&0xff) == len(s) {
			if len(s) <= 8 {
				return e.rank
			}
			off := int(e.ref >> 8)
			if b.arena[off+8:off+len(s)] == s[8:] {
				return e.rank
			}
		}
	}
}

// encode appends the token ids of text (valid UTF-8) to ids.
func (b *bpe) encode(ids []int, text string) []int {
	var buf [smallPiece + 1]part
	for len(text) > 0 {
		n := b.piece(text)
		piece := text[:n]
		text = text[n:]
		if r := b.lookup(piece); r != none {
			ids = append(ids, int(r))
			continue
		}
		parts, pooled := b.mergeBuffered(buf[:], piece)
		for i := 0; i+1 < len(parts); i++ {
			ids = append(ids, int(b.lookup(piece[parts[i].start:parts[i+1].start])))
		}
		if pooled != nil {
			largeParts.Put(pooled)
		}
	}
	return ids
}

// count returns the number of tokens of text (valid UTF-8). It does not
// allocate.
func (b *bpe) count(text string) int {
	var buf [smallPiece + 1]part
	n := 0
	for len(text) > 0 {
		k := b.piece(text)
		piece := text[:k]
		text = text[k:]
		if len(piece) == 1 || b.lookup(piece) != none {
			n++
			continue
		}
		parts, pooled := b.mergeBuffered(buf[:], piece)
		n += len(parts) - 1
		if pooled != nil {
			largeParts.Put(pooled)
		}
	}
	return n
}

// smallPiece is the longest piece merged in a buffer on the stack; longer
// ones use buffers from largeParts.
const smallPiece = 64

var largeParts = sync.Pool{New: func() any { return new([]part) }}

// mergeBuffered is merge with its parts in buf when the piece is short, or
// else in a pooled buffer, which it returns too for the caller to put back
// into largeParts.
func (b *bpe) mergeBuffered(buf []part, piece string) ([]part, *[]part) {
	if len(piece) < len(buf) {
		return b.merge(buf[:len(piece)+1], piece), nil
	}
	pooled := largeParts.Get().(*[]part)
	if cap(*pooled) <= len(piece) {
		*pooled = make([]part, len(piece)+1)
	}
	return b.merge((*pooled)[:len(piece)+1], piece), pooled
}

type part struct {
	start int32
	rank  rank // rank of the pair starting here, or none
}

// merge runs byte-pair merging on piece, as tiktoken's byte_pair_merge does:
// repeatedly join the adjacent pair of lowest rank (the leftmost of equal
// ones). parts has room for len(piece)+1 parts; merge returns its prefix
// holding the part boundaries, with a final sentinel at len(piece).
func (b *bpe) merge(parts []part, piece string) []part {
	parts = parts[:len(piece)+1]
	for i := 0; i+1 < len(piece); i++ {
		parts[i] = part{int32(i), b.pair[int(piece[i])<<8|int(piece[i+1])]}
	}
	parts[len(piece)-1] = part{int32(len(piece) - 1), none}
	parts[len(piece)] = part{int32(len(piece)), none}
	// rank returns the rank of parts i and i+1 joined with part i+2.
	rank := func(i int) rank {
		if i+3 < len(parts) {
			return b.lookup(piece[parts[i].start:parts[i+3].start])
		}
		return none
	}
	for len(parts) > 2 {
		least, at := none, -1
		for i, p := range parts[:len(parts)-1] {
			if p.rank < least {
				least, at = p.rank, i
			}
		}
		if at < 0 {
			break
		}
		if at > 0 {
			parts[at-1].rank = rank(at - 1)
		}
		parts[at].rank = rank(at)
		copy(parts[at+1:], parts[at+2:])
		parts = parts[:len(parts)-1]
	}
	return parts
}
