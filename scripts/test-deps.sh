#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine with Go.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v go >/dev/null || { echo "test-deps: Go is not installed (need Go 1.26)" >&2; exit 1; }
go mod download
go build ./...
# MLflow server for the mlflow/ integration tests (pinned, in .venv/mlflow; idempotent).
./scripts/mlflow-venv.sh
