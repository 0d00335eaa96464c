package openai

import (
	"context"

	"llmscope"
)

// ApplyClient sets c's User, Key and Team from the client key that
// authenticated the request of ctx (llmscope.ClientKeyFrom), overriding
// whatever labels the request's headers gave; without one it leaves c
// as it is. Call it after ReadLabels: only the authenticating middleware
// can put a key in a context, so a client cannot forge these.
func ApplyClient(ctx context.Context, c *llmscope.Call) {
	k, ok := llmscope.ClientKeyFrom(ctx)
	if !ok {
		return
	}
	c.User, c.Key, c.Team = cut(k.CallUser(), MaxLabelBytes), k.Name, k.Team
}
