package llmscope

import (
	"context"
	"time"
)

// ClientKey is the client key that authenticated a request: its name, its
// owner and what it may do. Values put in a context are shared between
// requests and must not be modified.
type ClientKey struct {
	Name string // the key's name, recorded as the call's Key
	User string // its owner user; "" records the name as the call's user
	Team string // its owner team
	// Models lists the models the key may call as path.Match globs;
	// empty allows every model. The gateway enforces it.
	Models  []string
	Expires time.Time // zero: never
}

// CallUser returns the user a call made with k is recorded under: its
// User, or its Name when it has none.
func (k *ClientKey) CallUser() string {
	if k.User != "" {
		return k.User
	}
	return k.Name
}

type clientKey struct{}

// WithClientKey returns ctx marked as a request its sender authenticated
// with k. Only the authenticating middleware sets it; the gateway trusts
// it (a header could be forged, a context value cannot).
func WithClientKey(ctx context.Context, k *ClientKey) context.Context {
	return context.WithValue(ctx, clientKey{}, k)
}

// ClientKeyFrom returns the client key that authenticated the request of
// ctx, and whether one did.
func ClientKeyFrom(ctx context.Context) (*ClientKey, bool) {
	k, ok := ctx.Value(clientKey{}).(*ClientKey)
	return k, ok && k != nil
}

// WithClient returns ctx marked as a request its sender authenticated with
// the client key named name (one without owner or limits: its name is
// the call's user), as WithClientKey.
func WithClient(ctx context.Context, name string) context.Context {
	return WithClientKey(ctx, &ClientKey{Name: name})
}

// ClientFrom returns the name of the client key that authenticated the
// request of ctx, and whether one did.
func ClientFrom(ctx context.Context) (string, bool) {
	if k, ok := ClientKeyFrom(ctx); ok {
		return k.Name, true
	}
	return "", false
}
