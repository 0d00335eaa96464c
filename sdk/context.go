package sdk

import (
	"context"
	"maps"
)

type labelsKey struct{}

// labels are the X-Llmscope-* labels carried by a context.
type labels struct {
	experiment, run, user, session string
	tags                           map[string]string
}

func from(ctx context.Context) labels {
	l, _ := ctx.Value(labelsKey{}).(labels)
	return l
}

func with(ctx context.Context, set func(*labels)) context.Context {
	l := from(ctx)
	l.tags = maps.Clone(l.tags)
	set(&l)
	return context.WithValue(ctx, labelsKey{}, l)
}

// WithRun records the calls made with ctx as part of the named run.
func WithRun(ctx context.Context, name string) context.Context {
	return with(ctx, func(l *labels) { l.run = name })
}

// WithExperiment records the calls made with ctx in the named experiment.
func WithExperiment(ctx context.Context, name string) context.Context {
	return with(ctx, func(l *labels) { l.experiment = name })
}

// WithUser records the calls made with ctx as made for user.
func WithUser(ctx context.Context, user string) context.Context {
	return with(ctx, func(l *labels) { l.user = user })
}

// WithSession records the calls made with ctx as part of session.
func WithSession(ctx context.Context, session string) context.Context {
	return with(ctx, func(l *labels) { l.session = session })
}

// WithTags adds tags to the calls made with ctx (merged over earlier ones).
func WithTags(ctx context.Context, tags map[string]string) context.Context {
	return with(ctx, func(l *labels) {
		if l.tags == nil {
			l.tags = map[string]string{}
		}
		maps.Copy(l.tags, tags)
	})
}
