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
#
# Also pins the `openai` Python client (cmd/llmscope's autolog side-by-side
# test drives it with and without mlflow.openai.autolog()): 2.47.0 is the
# newest version MLflow 3.17.2 declares for OpenAI autologging
# (mlflow/ml_package_versions.py: openai autologging 2.2.0 ... 2.47.0).
# Also pins the provider clients the gateway's provider tests drive:
# anthropic 2.14.0 and google-genai 3.6.1.
# Idempotent: does nothing when the venv already has these versions.
set -euo pipefail
cd "$(dirname "$0")/.."

MLFLOW_VERSION="${MLFLOW_VERSION:-3.17.2}"
OPENAI_VERSION="${OPENAI_PY_VERSION:-2.47.0}"
ANTHROPIC_VERSION="${ANTHROPIC_PY_VERSION:-2.14.0}"
GENAI_VERSION="${GENAI_PY_VERSION:-3.6.1}"
VENV="${MLFLOW_VENV:-.venv/mlflow}"

version_of() {
	"$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null
}

mlflow_installed() {
	[ -x "$VENV/bin/mlflow" ] && [ -x "$VENV/bin/python" ] && [ "$(version_of mlflow)" = "$MLFLOW_VERSION" ]
}

openai_installed() {
	[ -x "$VENV/bin/python" ] && [ "$(version_of openai)" = "$OPENAI_VERSION" ] &&
		[ "$(version_of anthropic)" = "$ANTHROPIC_VERSION" ] && [ "$(version_of google-genai)" = "$GENAI_VERSION" ]
}

install_openai() {
	echo "mlflow-venv: installing openai $OPENAI_VERSION, anthropic $ANTHROPIC_VERSION, google-genai $GENAI_VERSION into $VENV"
	"$VENV/bin/python" -m pip install -q --disable-pip-version-check "openai==$OPENAI_VERSION" \
		"anthropic==$ANTHROPIC_VERSION" "google-genai==$GENAI_VERSION"
	openai_installed || { echo "mlflow-venv: a client is missing after install" >&2; exit 1; }
}

if mlflow_installed; then
	echo "mlflow-venv: MLflow $MLFLOW_VERSION already in $VENV"
	if openai_installed; then
		echo "mlflow-venv: openai $OPENAI_VERSION, anthropic $ANTHROPIC_VERSION, google-genai $GENAI_VERSION already in $VENV"
	else
		install_openai
	fi
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
mlflow_installed || { echo "mlflow-venv: MLflow $MLFLOW_VERSION missing after install" >&2; exit 1; }
openai_installed || install_openai
echo "mlflow-venv: ready: $VENV/bin/mlflow ($MLFLOW_VERSION), openai $OPENAI_VERSION"
