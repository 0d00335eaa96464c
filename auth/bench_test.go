package auth

import (
	"net/http"
	"testing"
)

// discard is a ResponseWriter keeping nothing but its header map, so the
// benchmark measures the guard rather than a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkWrap measures the guard on the hot path, a /v1 request from an
// allowed Host, without and with client keys.
func BenchmarkWrap(b *testing.B) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	for _, bc := range []struct {
		name string
		cfg  Config
		auth string
	}{
		{"keys=off", Config{MaxInflight: 1024}, "Bearer sk-proj-provider-key"},
		{"keys=on", Config{MaxInflight: 1024, ClientKeys: mustKeys(b)}, "Bearer " + aliceKey},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newGuard(b, bc.cfg).Wrap(next)
			r := req("POST", "/v1/chat/completions", "Authorization", bc.auth, "Content-Type", "application/json")
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
