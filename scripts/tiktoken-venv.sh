#!/usr/bin/env bash
# Sourced by the tiktoken scripts: makes OpenAI's reference tiktoken ready
# offline. Sets VENV (a virtualenv with tiktoken 0.14.0, made on first use)
# and CACHE (tiktoken's vocabulary cache, filled from the .tiktoken files
# that github.com/pkoukk/tiktoken-go-loader embeds, their sha256 checked here
# and again by tiktoken). Run from the repository's root; needs python3
# (venv, pip) and go.
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
for e in o200k_base cl100k_base; do
  if [ ! -f "$CACHE/${FILE[$e]}" ]; then
    assets="$(go list -m -f '{{.Dir}}' github.com/pkoukk/tiktoken-go-loader)/assets"
    echo "${SHA[$e]}  $assets/$e.tiktoken" | sha256sum -c --quiet -
    cp "$assets/$e.tiktoken" "$CACHE/${FILE[$e]}"
  fi
done
