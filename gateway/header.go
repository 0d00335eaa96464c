package gateway

import (
	"net/http"
)

// Headers of llmscope's own (the labels it reads are in package openai).
const (
	HeaderCallID = "X-Llmscope-Call-Id" // added to every response
	// HeaderVia lists the gateways a request passed through, so a gateway
	// whose upstream points back at itself answers 508 instead of looping.
	HeaderVia = "X-Llmscope-Via"
)

// hopByHop reports whether a header belongs to one connection only.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host":
		return true
	}
	return false
}

// copyHeader adds the end-to-end headers of src to dst, except
// Access-Control-Allow-Credentials: llmscope's answers never invite a
// browser to send credentials cross-origin, whatever the upstream says.
func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		if !hopByHop(k) && k != "Access-Control-Allow-Credentials" {
			dst[k] = vs
		}
	}
}
