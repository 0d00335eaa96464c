package gateway

import (
	"net/http"
	"net/url"
	"strings"
)

// maxUnescapes is how many layers of percent-encoding badPath peels off a
// segment ("%25252e" is three).
const maxUnescapes = 4

// badPath returns why r's path may not be sent upstream, or "" when it may:
// a "." or ".." segment, plain or percent-encoded (in any case, any number
// of times), or a backslash, in r.URL.Path or r.URL.EscapedPath(). An
// encoded slash inside a segment ("meta-llama%2FLlama-3") is fine.
func badPath(r *http.Request) string {
	p, ep := r.URL.Path, r.URL.EscapedPath()
	if !suspect(p) && !suspect(ep) {
		return "" // no dot, backslash or escape: nothing to decode
	}
	if dotSegment(p, false) || dotSegment(ep, true) {
		return "the request path has a \".\" or \"..\" segment"
	}
	if strings.ContainsRune(p, '\\') || strings.ContainsRune(ep, '\\') || hasEncodedBackslash(ep) {
		return "the request path has a backslash"
	}
	return ""
}

// suspect reports whether p has a byte badPath must look at closer.
func suspect(p string) bool {
	return strings.ContainsAny(p, ".%\\")
}

// dotSegment reports whether a segment of p (split at '/') is "." or "..";
// with escaped, each segment is unescaped as often as it decodes, and the
// slashes and backslashes that reveals split it further.
func dotSegment(p string, escaped bool) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if isDots(seg) {
			return true
		}
		if !escaped || !strings.Contains(seg, "%") {
			continue
		}
		for range maxUnescapes {
			u, err := url.PathUnescape(seg)
			if err != nil || u == seg {
				break
			}
			seg = u
			for part := range strings.FieldsFuncSeq(seg, func(r rune) bool { return r == '/' || r == '\\' }) {
				if isDots(part) {
					return true
				}
			}
		}
	}
	return false
}

func isDots(s string) bool { return s == "." || s == ".." }

// hasEncodedBackslash reports whether p, unescaped up to maxUnescapes
// times, holds a backslash.
func hasEncodedBackslash(p string) bool {
	for range maxUnescapes {
		if !strings.Contains(p, "%") {
			return false
		}
		u, err := url.PathUnescape(p)
		if err != nil || u == p {
			return false
		}
		if strings.ContainsRune(u, '\\') {
			return true
		}
		p = u
	}
	return false
}
