package gateway

import (
	"net/http"
	"strings"

	"llmscope"
)

// Request headers llmscope reads and strips before the upstream.
const (
	HeaderExperiment = "X-Llmscope-Experiment"
	HeaderRun        = "X-Llmscope-Run"
	HeaderUser       = "X-Llmscope-User"
	HeaderSession    = "X-Llmscope-Session"
	HeaderTags       = "X-Llmscope-Tags"
	HeaderCallID     = "X-Llmscope-Call-Id" // added to every response
	// HeaderVia lists the gateways a request passed through, so a gateway
	// whose upstream points back at itself answers 508 instead of looping.
	HeaderVia = "X-Llmscope-Via"
)

// readLabels copies the X-Llmscope-* labels of a request onto c.
func readLabels(h http.Header, c *llmscope.Call) {
	if v := h.Get(HeaderExperiment); v != "" {
		c.Experiment = v
	}
	c.Run = h.Get(HeaderRun)
	c.User = h.Get(HeaderUser)
	c.Session = h.Get(HeaderSession)
	c.Tags = ParseTags(h.Get(HeaderTags))
	if c.Tags == nil {
		c.Tags = map[string]string{}
	}
}

// ParseTags reads "k=v,k2=v2" into a map. Items without "=" get an empty
// value; blank keys are ignored. It returns nil for an empty string.
func ParseTags(s string) map[string]string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	tags := make(map[string]string)
	for item := range strings.SplitSeq(s, ",") {
		k, v, _ := strings.Cut(item, "=")
		if k = strings.TrimSpace(k); k != "" {
			tags[k] = strings.TrimSpace(v)
		}
	}
	return tags
}

// hopByHop reports whether a header belongs to one connection only.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host":
		return true
	}
	return false
}

// copyHeader adds the end-to-end headers of src to dst.
func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		if !hopByHop(k) {
			dst[k] = vs
		}
	}
}
