package tokenizer

import (
	"fmt"
	"math"
	"regexp"
	"sync"

	loader "github.com/pkoukk/tiktoken-go-loader"
)

// bpe is one encoding: its byte-pair ranks and its pre-tokenizer.
type bpe struct {
	ranks map[string]int
	split *regexp.Regexp
}

// The vocabularies are OpenAI's .tiktoken files, embedded in the binary by
// tiktoken-go-loader; nothing is downloaded.
func loadBPE(file string, split *regexp.Regexp) func() (*bpe, error) {
	return sync.OnceValues(func() (*bpe, error) {
		ranks, err := loader.NewOfflineLoader().LoadTiktokenBpe(file)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", file, err)
		}
		return &bpe{ranks: ranks, split: split}, nil
	})
}

var encodings = map[string]func() (*bpe, error){
	O200kBase:  loadBPE("o200k_base.tiktoken", o200kSplit),
	Cl100kBase: loadBPE("cl100k_base.tiktoken", cl100Split),
}

// encode appends the token ids of text to ids.
func (b *bpe) encode(ids []int, text string) []int {
	var parts []part
	pieces(b.split, text, func(piece string) {
		if id, ok := b.ranks[piece]; ok {
			ids = append(ids, id)
			return
		}
		parts = b.merge(parts[:0], piece)
		for i := 0; i+1 < len(parts); i++ {
			ids = append(ids, b.ranks[piece[parts[i].start:parts[i+1].start]])
		}
	})
	return ids
}

type part struct {
	start int
	rank  int // rank of the pair starting here, math.MaxInt when none
}

// merge runs byte-pair merging on piece, as tiktoken's byte_pair_merge does:
// repeatedly join the adjacent pair of lowest rank. It returns the part
// boundaries, with a final sentinel at len(piece).
func (b *bpe) merge(parts []part, piece string) []part {
	for i := 0; i <= len(piece); i++ {
		parts = append(parts, part{i, math.MaxInt})
	}
	rank := func(i int) int {
		if i+3 < len(parts) {
			if r, ok := b.ranks[piece[parts[i].start:parts[i+3].start]]; ok {
				return r
			}
		}
		return math.MaxInt
	}
	for i := 0; i+2 < len(parts); i++ {
		if r, ok := b.ranks[piece[parts[i].start:parts[i+2].start]]; ok {
			parts[i].rank = r
		}
	}
	for len(parts) > 1 {
		min, at := math.MaxInt, -1
		for i := 0; i+1 < len(parts); i++ {
			if parts[i].rank < min {
				min, at = parts[i].rank, i
			}
		}
		if at < 0 {
			break
		}
		if at > 0 {
			parts[at-1].rank = rank(at - 1)
		}
		parts[at].rank = rank(at)
		parts = append(parts[:at+1], parts[at+2:]...)
	}
	return parts
}
