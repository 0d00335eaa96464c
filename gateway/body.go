package gateway

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the request body limits.
const (
	// DefaultMaxBufferedBytes bounds the bytes held by all request bodies in
	// flight together when Config.MaxBufferedBytes is 0.
	DefaultMaxBufferedBytes = 256 << 20
	// DefaultBodyTimeout bounds the time a client may take to send its
	// request body when Config.BodyTimeout is 0.
	DefaultBodyTimeout = 60 * time.Second
)

// setReadDeadline sets the read deadline of w's connection, as
// http.ResponseController does (unwrapping wrappers), without building an
// error when w cannot: false then.
func setReadDeadline(w http.ResponseWriter, t time.Time) bool {
	for {
		switch v := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			return v.SetReadDeadline(t) == nil
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return false
		}
	}
}

// errOverloaded is returned by reqBody.read when the budget of buffered
// bytes cannot hold the body's next growth.
var errOverloaded = errors.New("request body buffers are full")

// budget bounds the bytes held by request bodies in flight together.
type budget struct {
	limit int64
	used  atomic.Int64
}

// reserve takes n bytes of the budget; false (taking nothing) when that
// would exceed the limit.
func (b *budget) reserve(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// release gives n reserved bytes back.
func (b *budget) release(n int64) { b.used.Add(-n) }

// bodyClasses are the capacities of pooled body buffers: a body starts in
// the smallest and moves up as its bytes arrive, so a small request never
// holds (or is charged for) a large buffer. Beyond the largest class a body
// has a buffer of its own, doubled as needed.
var bodyClasses = [...]int{1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}

var bodyPools [len(bodyClasses)]sync.Pool // *[]byte of cap bodyClasses[i]

// reqBody is a request body as it arrives. Its buffer's capacity is
// charged to the gateway's budget from before it is allocated or taken from
// a pool until free.
type reqBody struct {
	p       *[]byte // the pooled slice when buf is a pooled buffer
	buf     []byte
	class   int   // index of buf's class in bodyClasses; len(bodyClasses) when unpooled
	charged int64 // bytes reserved in the budget for buf
}

// read appends r to the body until EOF, growing the buffer only when it is
// full and more bytes arrive (never from a declared length). It returns
// errOverloaded when the budget cannot cover a growth.
func (b *reqBody) read(r io.Reader, bud *budget) error {
	if b.buf == nil && !b.grow(bud) {
		return errOverloaded
	}
	for {
		if len(b.buf) == cap(b.buf) {
			// Full: see whether anything follows before growing, so a body
			// that fills its buffer exactly never moves up a class. (probe
			// is declared here: it escapes, and only this path pays for it.)
			var probe [1]byte
			n, err := r.Read(probe[:])
			if n > 0 {
				if !b.grow(bud) {
					return errOverloaded
				}
				b.buf = append(b.buf, probe[0])
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			continue
		}
		n, err := r.Read(b.buf[len(b.buf):cap(b.buf)])
		b.buf = b.buf[:len(b.buf)+n]
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// room makes sure at least n bytes follow the body in its buffer; false
// when the budget cannot cover the growth.
func (b *reqBody) room(n int, bud *budget) bool {
	for cap(b.buf)-len(b.buf) < n {
		if !b.grow(bud) {
			return false
		}
	}
	return true
}

// grow moves the body into a larger buffer (the first one when it has
// none), reserving the new capacity before taking it and releasing the old
// one after.
func (b *reqBody) grow(bud *budget) bool {
	next := 0
	if b.buf != nil {
		next = b.class + 1
	}
	var size int
	if next < len(bodyClasses) {
		size = bodyClasses[next]
	} else {
		next = len(bodyClasses)
		size = 2 * cap(b.buf)
	}
	if !bud.reserve(int64(size)) {
		return false
	}
	var p *[]byte
	var buf []byte
	if next < len(bodyClasses) {
		if v := bodyPools[next].Get(); v != nil {
			p = v.(*[]byte)
		} else {
			s := make([]byte, 0, size)
			p = &s
		}
		buf = append((*p)[:0], b.buf...)
	} else {
		buf = make([]byte, len(b.buf), size)
		copy(buf, b.buf)
	}
	old := b.charged
	b.putBack()
	bud.release(old)
	b.p, b.buf, b.class, b.charged = p, buf, next, int64(size)
	return true
}

// putBack returns a pooled buffer to its pool. The body must not be used
// afterwards.
func (b *reqBody) putBack() {
	if b.p != nil {
		*b.p = b.buf[:0]
		bodyPools[b.class].Put(b.p)
	}
	b.p, b.buf = nil, nil
}

// free releases the body's charge and, when reuse is safe (nothing else
// may still read the buffer), returns its buffer to the pool.
func (b *reqBody) free(bud *budget, reuse bool) {
	if b.charged > 0 {
		bud.release(b.charged)
		b.charged = 0
	}
	if reuse {
		b.putBack()
	}
	b.p, b.buf = nil, nil
}
