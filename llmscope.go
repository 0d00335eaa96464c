// Package llmscope is the domain of llmscope: the record of one LLM API call
// (Call) and the interfaces the rest of the program is built around (Store,
// Sink). It imports only the standard library; adapters live in sub-packages.
package llmscope

import "errors"

// Operation names, as they appear in Call.Operation and in metric labels.
const (
	OpChat           = "chat"
	OpTextCompletion = "text_completion"
	OpEmbeddings     = "embeddings"
	OpResponses      = "responses"
	OpModels         = "models"
	OpOther          = "other"
)

// Usage sources, as they appear in Usage.Source.
const (
	UsageReported  = "reported"  // the upstream sent the counts
	UsageEstimated = "estimated" // llmscope counted the tokens itself
	UsageNone      = "none"      // no counts (no text to count, or an error)
)

// Error types llmscope itself assigns to a Call. An upstream HTTP error is
// recorded with its status code as the error type ("429", "500").
const (
	ErrTypeCancelled   = "cancelled"            // the client went away before the end
	ErrTypeStream      = "stream_broken"        // the upstream stream ended abnormally
	ErrTypeUnreachable = "upstream_unreachable" // no response from the upstream
	ErrTypeTimeout     = "timeout"              // the upstream did not answer in time
	ErrTypeUpstream    = "upstream_error"       // an error reported inside a successful response
)

// ErrNotFound is returned by Store.Get when no call has the given id.
var ErrNotFound = errors.New("not found")
