package sqlite

import (
	"testing"

	"llmscope/internal/storetest"
)

func TestLedger(t *testing.T) {
	storetest.RunLedger(t, func(t *testing.T) func() storetest.LedgerStore {
		open := openShared(t)
		return func() storetest.LedgerStore { return open() }
	})
}

func BenchmarkLedgerAcquireCommit(b *testing.B) {
	b.Run("serial", func(b *testing.B) { storetest.BenchLedgerAcquireCommit(b, openTemp(b), false) })
	b.Run("parallel", func(b *testing.B) { storetest.BenchLedgerAcquireCommit(b, openTemp(b), true) })
}

func BenchmarkCounterTake(b *testing.B) {
	b.Run("serial", func(b *testing.B) { storetest.BenchCounterTake(b, openTemp(b), false) })
	b.Run("parallel", func(b *testing.B) { storetest.BenchCounterTake(b, openTemp(b), true) })
}
