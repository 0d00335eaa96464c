package otlp

import (
	"net/url"
	"strings"
)

// ConfigFromEnv reads the standard OpenTelemetry exporter variables through
// getenv (os.Getenv, or a fake in tests).
//
// endpoint is OTEL_EXPORTER_OTLP_TRACES_ENDPOINT used as is, else
// OTEL_EXPORTER_OTLP_ENDPOINT (a base URL) with "/v1/traces" appended, else
// "": llmscope exports over OTLP only when asked to, so there is no
// localhost default.
//
// headers merges OTEL_EXPORTER_OTLP_HEADERS and then
// OTEL_EXPORTER_OTLP_TRACES_HEADERS (the signal-specific value wins for a
// key present in both). Each is a comma-separated list of key=value with
// percent-encoded values; keys and values are trimmed, and an entry with no
// "=", an empty key or a value that does not decode is skipped. headers is
// nil when there are none.
func ConfigFromEnv(getenv func(string) string) (endpoint string, headers map[string]string) {
	if e := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")); e != "" {
		endpoint = e
	} else if e := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")); e != "" {
		endpoint = strings.TrimRight(e, "/") + "/v1/traces"
	}
	for _, name := range [...]string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		for k, v := range parseHeaders(getenv(name)) {
			if headers == nil {
				headers = map[string]string{}
			}
			headers[k] = v
		}
	}
	return endpoint, headers
}

// parseHeaders parses one OTEL_EXPORTER_OTLP_*HEADERS value.
func parseHeaders(s string) map[string]string {
	var h map[string]string
	for item := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			continue
		}
		// PathUnescape, not QueryUnescape: "+" stays "+" (base64 tokens).
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		if h == nil {
			h = map[string]string{}
		}
		h[k] = dv
	}
	return h
}
