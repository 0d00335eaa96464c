package auth

import (
	"fmt"
	"net/http"
	"strings"
)

// hostEntry is one allowed Host: a name (brackets removed from IPv6
// literals, lower case) and a port, empty for any.
type hostEntry struct{ name, port string }

func parseHostEntry(s string) (hostEntry, error) {
	if s == "" || strings.ContainsAny(s, "/@ \t,") {
		return hostEntry{}, fmt.Errorf("%q: want host or host:port", s)
	}
	name, port, ok := splitHost(s)
	if !ok || name == "" {
		return hostEntry{}, fmt.Errorf("%q: want host or host:port", s)
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return hostEntry{}, fmt.Errorf("%q: port must be a number", s)
		}
	}
	return hostEntry{name: strings.ToLower(name), port: port}, nil
}

// splitHost splits a Host value into its name (IPv6 brackets and a final
// dot removed) and port ("" when absent). ok is false for an unclosed
// bracket or text after it that is not a port.
func splitHost(h string) (name, port string, ok bool) {
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", "", false
		}
		name, rest := h[1:end], h[end+1:]
		switch {
		case rest == "":
		case rest[0] == ':':
			port = rest[1:]
		default:
			return "", "", false
		}
		return name, port, true
	}
	if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 {
		name, port = h[:i], h[i+1:]
	} else {
		name = h // no port, or a bare IPv6 literal
	}
	return strings.TrimSuffix(name, "."), port, true
}

// hostAllowed reports whether the request's Host is one of the allowed.
func (g *Guard) hostAllowed(host string) bool {
	if g.anyHost {
		return true
	}
	name, port, ok := splitHost(host)
	if !ok || name == "" {
		return false
	}
	for _, e := range g.hosts {
		if strings.EqualFold(e.name, name) && (e.port == "" || e.port == port) {
			return true
		}
	}
	return false
}

// originAllowed reports whether a browser request comes from the
// gateway's own origin or an allowed one. A request without Origin (and
// not marked cross-site by Sec-Fetch-Site) is not a browser's
// cross-origin request and passes.
func (g *Guard) originAllowed(r *http.Request) bool {
	o := header(r.Header, "Origin")
	if o == "" {
		return header(r.Header, "Sec-Fetch-Site") != "cross-site"
	}
	scheme, host, ok := splitOrigin(o)
	if !ok {
		return false // "null", or not an origin
	}
	if sameOrigin(scheme, host, r.Host) {
		return true
	}
	if len(g.origins) == 0 {
		return false
	}
	norm := scheme + "://" + host
	for _, a := range g.origins {
		if strings.EqualFold(a, norm) {
			return true
		}
	}
	return false
}

// splitOrigin splits "scheme://host[:port]" with the scheme's default port
// removed from host.
func splitOrigin(o string) (scheme, host string, ok bool) {
	i := strings.Index(o, "://")
	if i <= 0 {
		return "", "", false
	}
	scheme, host = o[:i], o[i+3:]
	if host == "" || strings.ContainsAny(host, "/?#@ \\") {
		return "", "", false
	}
	if d := defaultPort(scheme); d != "" {
		host = strings.TrimSuffix(host, ":"+d)
	}
	return scheme, host, true
}

func defaultPort(scheme string) string {
	switch strings.ToLower(scheme) {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}

// sameOrigin reports whether an origin's host (default port removed) is
// the request's Host. A Host without a port matches the origin on the
// scheme's default port, as behind a proxy terminating TLS. The scheme is
// not compared.
func sameOrigin(scheme, originHost, reqHost string) bool {
	if strings.EqualFold(originHost, reqHost) {
		return true
	}
	// Host may carry the default port the Origin leaves out.
	if d := defaultPort(scheme); d != "" && strings.HasSuffix(reqHost, ":"+d) {
		return strings.EqualFold(originHost, reqHost[:len(reqHost)-len(d)-1])
	}
	return false
}

// normalizeOrigin checks a configured origin and returns it lower case
// without a trailing slash or default port.
func normalizeOrigin(s string) (string, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "/")
	scheme, host, ok := splitOrigin(t)
	if !ok || scheme == "" || strings.ContainsAny(scheme, ":/") {
		return "", fmt.Errorf("%q: want scheme://host[:port]", s)
	}
	if _, _, ok := splitHost(host); !ok {
		return "", fmt.Errorf("%q: want scheme://host[:port]", s)
	}
	return strings.ToLower(scheme + "://" + host), nil
}
