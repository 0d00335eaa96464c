#!/usr/bin/env bash
# Creates a Python virtualenv with a pinned MLflow for the integration tests
# (internal/mlflowtest starts `mlflow server` from it).
#
#   scripts/mlflow-venv.sh            # -> .venv/mlflow (relative to the repo root)
#   MLFLOW_VENV=/some/dir scripts/mlflow-venv.sh
#
# Pin: MLflow 3.17.2. 3.18.0 is listed on PyPI but its dependency
# mlflow-skinny==3.18.0 is not published, so `pip install mlflow==3.18.0` fails.
# Plain `mlflow` (no [genai] extra): the base package already brings fastapi and
# uvicorn (the server's default front end) and the OTLP ingestion endpoint
# /v1/traces; the server prices LLM spans from MLflow's built-in price table
# when litellm is absent ([genai] adds boto3, slowapi, tiktoken, watchfiles and
# no litellm, so it changes nothing the tests use).
# Idempotent: does nothing when the venv already has this version.
set -euo pipefail
cd "$(dirname "$0")/.."

MLFLOW_VERSION="${MLFLOW_VERSION:-3.17.2}"
VENV="${MLFLOW_VENV:-.venv/mlflow}"

installed() {
	[ -x "$VENV/bin/mlflow" ] && [ -x "$VENV/bin/python" ] &&
		[ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mlflow"))' 2>/dev/null)" = "$MLFLOW_VERSION" ]
}

if installed; then
	echo "mlflow-venv: MLflow $MLFLOW_VERSION already in $VENV"
	exit 0
fi

command -v python3 >/dev/null || { echo "mlflow-venv: python3 is not installed" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
	# Debian's python3 needs python3-venv for ensurepip.
	if ! python3 -m venv "$VENV" 2>/dev/null; then
		if command -v apt-get >/dev/null; then
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
		fi
		rm -rf "$VENV"
		python3 -m venv "$VENV"
	fi
fi
echo "mlflow-venv: installing MLflow $MLFLOW_VERSION into $VENV (about a minute)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "mlflow==$MLFLOW_VERSION"
installed || { echo "mlflow-venv: MLflow $MLFLOW_VERSION missing after install" >&2; exit 1; }
echo "mlflow-venv: ready: $VENV/bin/mlflow ($MLFLOW_VERSION)"
