#!/usr/bin/env bash
# Compares the speed of package tokenizer with OpenAI's reference tiktoken
# (Python package, Rust core) on the same texts, in one run, and prints a
# markdown table. The texts are tokenizer/testdata/corpus/document_100k.txt
# and the short chat prompts of tokenizer/testdata/prompts.json.
#
# llmscope: the median ns/op of `go test -bench` over COUNT runs, for Count
# (what llmscope calls) and Encode (returns the ids, like tiktoken).
# tiktoken: the median over COUNT timeit repeats of encode_ordinary, each
# repeat timing enough calls to last about 0.2 s. For the prompts, both sides
# loop over the list and the time is per call. tiktoken is called from
# Python, so its per-call time includes the Python call and the building of
# the list of ids; the script prints that floor (encode_ordinary("x")) too.
#
# Usage: scripts/tokenizer-bench.sh [COUNT]   (run from anywhere; COUNT=5)
# Needs go and python3 (venv, pip); scripts/tiktoken-venv.sh makes the
# tiktoken virtualenv and its vocabulary cache if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-5}
. scripts/tiktoken-venv.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "running go benchmarks ($COUNT runs)..." >&2
go test -run '^$' -bench '^Benchmark(Count|Encode)$' -benchmem -count "$COUNT" ./tokenizer/ > "$work/go.txt"
echo "running tiktoken ($COUNT repeats)..." >&2
TIKTOKEN_CACHE_DIR="$CACHE" "$VENV/bin/python" - "$work/go.txt" "$COUNT" <<'EOF'
import json, re, statistics, sys, timeit

import tiktoken

go_file, count = sys.argv[1], int(sys.argv[2])
with open("tokenizer/testdata/corpus/document_100k.txt", "rb") as f:
    document = f.read().decode("utf-8", errors="replace")
with open("tokenizer/testdata/prompts.json") as f:
    prompts = json.load(f)

# Go: name -> list of ns per call (per prompt for the prompts).
go, go_tokens = {}, {}
for line in open(go_file):
    m = re.match(r"Benchmark(\w+)/(\w+)/(\w+)-\d+\s+\d+\s+([\d.]+) ns/op", line)
    if not m:
        continue
    kind, enc, text, ns = m.group(1), m.group(2), m.group(3), float(m.group(4))
    if text == "prompts":
        ns /= len(prompts)
    go.setdefault((kind, enc, text), []).append(ns)
    t = re.search(r"([\d.]+) tokens/op", line)
    if t:
        go_tokens[(enc, text)] = float(t.group(1))


def per_call(fn, calls_per_run):
    """Median over count repeats of the time of one call, in ns."""
    t = timeit.Timer(fn)
    number, _ = t.autorange()  # at least 0.2 s per repeat
    number = max(1, number)
    times = t.repeat(repeat=count, number=number)
    return statistics.median(times) / number / calls_per_run * 1e9


def fmt(ns):
    return f"{ns / 1e6:.2f} ms" if ns >= 1e6 else f"{ns / 1e3:.2f} µs"


rows = []
floor = {}
for name in ["o200k_base", "cl100k_base"]:
    enc = tiktoken.get_encoding(name)
    floor[name] = per_call(lambda: enc.encode_ordinary("x"), 1)
    for text, texts, fn in [
        ("document_100k", [document], lambda: enc.encode_ordinary(document)),
        ("prompts", prompts, lambda: [enc.encode_ordinary(p) for p in prompts]),
    ]:
        tokens = sum(len(enc.encode_ordinary(t)) for t in texts)
        if go_tokens[(name, text)] != tokens:
            sys.exit(f"{name} {text}: llmscope counts {go_tokens[(name, text)]:.0f} tokens, tiktoken {tokens}")
        ref = per_call(fn, len(texts))
        count_ns = statistics.median(go[("Count", name, text)])
        encode_ns = statistics.median(go[("Encode", name, text)])
        rows.append((name, text, tokens / len(texts), count_ns, encode_ns, ref))

print("| encoding | text | tokens/call | llmscope Count | llmscope Encode | tiktoken encode_ordinary | Count tokens/s | tiktoken tokens/s | ratio Count | ratio Encode |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, text, tokens, count_ns, encode_ns, ref in rows:
    label = "document_100k (1 call)" if text == "document_100k" else f"prompts (per call, {len(prompts)} prompts)"
    print(f"| {name} | {label} | {tokens:.{0 if tokens == int(tokens) else 1}f} | {fmt(count_ns)} | {fmt(encode_ns)} | {fmt(ref)} | "
          f"{tokens / count_ns * 1e3:.1f} M | {tokens / ref * 1e3:.1f} M | {ref / count_ns:.2f}× | {ref / encode_ns:.2f}× |")
print()
print(f"Medians of {count} runs on each side; ratio = tiktoken time / llmscope time (> 1: llmscope is faster).")
print("tiktoken's time per call includes the Python call and the list of ids it returns; encode_ordinary(\"x\") takes "
      + " and ".join(f"{fmt(ns)} ({name})" for name, ns in floor.items()) + ".")
EOF
