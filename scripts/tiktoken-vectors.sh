#!/usr/bin/env bash
# Regenerates tokenizer/testdata/vectors.json with OpenAI's reference Python
# tiktoken, offline (scripts/tiktoken-venv.sh makes it ready: the vocabulary
# files are the ones the Go module embeds, sha256 checked). Needs python3
# (venv, pip) and go.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tiktoken-venv.sh
TIKTOKEN_CACHE_DIR="$CACHE" "$VENV/bin/python" scripts/tiktoken_vectors.py tokenizer/testdata
