#!/usr/bin/env bash
# Runs the whole test suite with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
go vet ./...
go test -race -count=1 -timeout 20m ./... "$@"
