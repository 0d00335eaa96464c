#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine with Go.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v go >/dev/null || { echo "test-deps: Go is not installed (need Go 1.26)" >&2; exit 1; }
go mod download
go build ./...
# MLflow server for the mlflow/ integration tests (pinned, in .venv/mlflow; idempotent).
./scripts/mlflow-venv.sh
# Prometheus and promtool for the metrics integration tests (Debian's package).
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
	else
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
	fi
fi
# PostgreSQL server binaries for the postgres/ store tests, which start a
# throwaway cluster with initdb and pg_ctl (internal/pgtest; they fail
# without them when CI=true). Debian's package, idempotent.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
	else
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
	fi
fi
# Headless Chromium for the dashboard browser test (web/dashboard_browser_test.go,
# which fails without it when CI=true); Debian's package, idempotent.
if [ ! -x /usr/bin/chromium ]; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	else
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	fi
fi
