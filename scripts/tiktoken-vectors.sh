#!/usr/bin/env bash
# Regenerates tokenizer/testdata/vectors.json with OpenAI's reference Python
# tiktoken, offline: the vocabulary files come from the tiktoken-rs crate on
# crates.io, which ships them unchanged (their sha256 is checked below, and
# tiktoken checks it again). Needs python3 (venv, pip) and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TIKTOKEN_VENV:-.venv/tiktoken}
CACHE=${TIKTOKEN_CACHE_DIR:-.venv/tiktoken-cache}

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q tiktoken==0.14.0 regex==2026.11.19 requests==2.34.2
fi

# tiktoken names cached vocabularies by the sha1 of their download address.
declare -A FILE=([o200k_base]=fb374d419588a4632f3f557e76b4b70aebbca790 [cl100k_base]=9b5ad71b2ce5302211f9c61530b329a4922fc6a4)
declare -A SHA=([o200k_base]=446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d [cl100k_base]=223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7)
mkdir -p "$CACHE"
if [ ! -f "$CACHE/${FILE[o200k_base]}" ] || [ ! -f "$CACHE/${FILE[cl100k_base]}" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/fetch/src"
  printf '[package]\nname="fetch"\nversion="0.1.0"\nedition="2021"\n[dependencies]\ntiktoken-rs="=0.12.1"\n' > "$work/fetch/Cargo.toml"
  echo 'fn main(){}' > "$work/fetch/src/main.rs"
  (cd "$work/fetch" && cargo fetch -q)
  assets=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/tiktoken-rs-0.12.1/assets | head -1)
  for e in o200k_base cl100k_base; do
    echo "${SHA[$e]}  $assets/$e.tiktoken" | sha256sum -c --quiet -
    cp "$assets/$e.tiktoken" "$CACHE/${FILE[$e]}"
  done
fi
TIKTOKEN_CACHE_DIR="$CACHE" "$VENV/bin/python" scripts/tiktoken_vectors.py tokenizer/testdata
