package llmscope

import "context"

type clientKey struct{}

// WithClient returns ctx marked as a request its sender authenticated with
// the client key named name. Only the authenticating middleware sets it;
// the gateway trusts it (a header could be forged, a context value cannot).
func WithClient(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, clientKey{}, name)
}

// ClientFrom returns the name of the client key that authenticated the
// request of ctx, and whether one did.
func ClientFrom(ctx context.Context) (string, bool) {
	name, ok := ctx.Value(clientKey{}).(string)
	return name, ok
}
