package postgres

import (
	"testing"

	"llmscope"
	"llmscope/internal/storetest"
)

func TestLeases(t *testing.T) {
	storetest.RunLeases(t, func(t *testing.T) llmscope.Store { return openTemp(t) })
}
