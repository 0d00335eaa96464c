package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzBadPath: a path badPath lets through never holds a "." or ".."
// segment, nor a backslash, however many times (up to maxUnescapes) it is
// percent-decoded, as an upstream or a proxy behind it might decode it.
func FuzzBadPath(f *testing.F) {
	for _, s := range []string{"chat/completions", "models/meta-llama%2FLlama-3", "%2e%2e/x", ".%2E/x", "a/%252e%252e/b",
		"a%2F..%2Fb", "a\\b", "%5c", "x/./y", "files/a%3Fb", "%zz/..", "ok%2Fok/%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.ParseRequestURI("/v1/" + s)
		if err != nil || u.Host != "" {
			return
		}
		if badPath(&http.Request{URL: u}) != "" {
			return
		}
		p := u.EscapedPath()
		for i := 0; i <= maxUnescapes; i++ {
			for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
				if seg == "." || seg == ".." {
					t.Fatalf("%q passed, but decoded %d times it has the segment %q: %q", s, i, seg, p)
				}
			}
			if strings.ContainsRune(p, '\\') {
				t.Fatalf("%q passed, but decoded %d times it has a backslash: %q", s, i, p)
			}
			d, err := url.PathUnescape(p)
			if err != nil || d == p {
				return
			}
			p = d
		}
	})
}
