package sqlite

import (
	"testing"

	"llmscope"
	"llmscope/internal/storetest"
)

func TestStoreGroupBy(t *testing.T) {
	storetest.RunGroupBy(t, func(t *testing.T) llmscope.Store { return openTemp(t) })
}
