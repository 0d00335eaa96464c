package sim

import (
	"encoding/binary"
	"encoding/hex"
)

// FNV-1a, 64 bit, written inline so hashing a request never allocates.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hasher accumulates an FNV-1a hash of a request's identifying parts.
type hasher uint64

func newHasher(seed int64, model string) hasher {
	h := hasher(fnvOffset)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.bytes(b[:])
	h.str(model)
	h.sep()
	return h
}

func (h *hasher) bytes(b []byte) {
	x := uint64(*h)
	for _, c := range b {
		x ^= uint64(c)
		x *= fnvPrime
	}
	*h = hasher(x)
}

func (h *hasher) str(s string) {
	x := uint64(*h)
	for i := 0; i < len(s); i++ {
		x ^= uint64(s[i])
		x *= fnvPrime
	}
	*h = hasher(x)
}

func (h *hasher) int(v int) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	h.bytes(b[:])
}

// sep separates fields so ("ab","c") and ("a","bc") hash differently.
func (h *hasher) sep() { *h = hasher((uint64(*h) ^ 0x1e) * fnvPrime) }

// sum returns the hash, mixed so that nearby inputs give unrelated PRNG seeds.
func (h hasher) sum() uint64 { return mix(uint64(h)) }

// mix is the splitmix64 finaliser.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// rng is splitmix64: tiny, fast and deterministic. Not safe for concurrent
// use; every request makes its own.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix(r.s)
}

// intn returns a number in [0, n); n > 0.
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// float returns a number in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// Salts that derive independent streams from one request hash.
const (
	saltID     = 0x51ab1e
	saltMsgID  = 0x3e55a6e
	saltJitter = 0x7177e4
	saltReq    = 0x4e90e57
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ids are the deterministic identifiers and timestamp of one response.
type ids struct {
	chat      string // chatcmpl-…
	cmpl      string // cmpl-…
	resp      string // resp_…
	msg       string // msg_…
	requestID string // req_… (X-Request-Id header)
	created   int64  // unix seconds
}

// epoch is the base of every simulated timestamp (2023-11-14T22:13:20Z).
const epoch = 1700000000

func makeIDs(h uint64) ids {
	r := rng{s: h ^ saltID}
	var b [29]byte
	for i := range b {
		b[i] = base62[r.intn(len(base62))]
	}
	tail := string(b[:])
	return ids{
		chat:      "chatcmpl-" + tail,
		cmpl:      "cmpl-" + tail,
		resp:      "resp_" + hexID(h^saltID, 3),
		msg:       "msg_" + hexID(h^saltMsgID, 3),
		requestID: "req_" + hexID(h^saltReq, 2),
		created:   epoch + int64(h%(365*24*3600)),
	}
}

// hexID returns 16×words hex digits drawn from seed.
func hexID(seed uint64, words int) string {
	r := rng{s: seed}
	b := make([]byte, 8*words)
	for i := 0; i < words; i++ {
		binary.BigEndian.PutUint64(b[8*i:], r.next())
	}
	return hex.EncodeToString(b)
}
