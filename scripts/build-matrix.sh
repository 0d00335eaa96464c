#!/usr/bin/env bash
# Cross-compiles llmscope for the release targets of .goreleaser.yaml
# (linux, darwin × amd64, arm64) with the same flags, into OUT (default
# bin/matrix, ignored by git): a dry run of the release build that needs no
# goreleaser. Every target is tried; it fails if any of them did not build.
# The first run compiles everything once per target (about 100 s each on 2
# cores); later runs are cache hits.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bin/matrix}"
VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
mkdir -p "$OUT"
failed=()
for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64; do
	os="${target%/*}" arch="${target#*/}"
	bin="$OUT/llmscope_${os}_${arch}"
	start=$SECONDS
	if CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" go build -trimpath \
		-ldflags "-s -w -X main.version=$VERSION" -o "$bin" ./cmd/llmscope; then
		echo "built $bin ($(du -h "$bin" | cut -f1), $((SECONDS - start)) s)"
	else
		echo "FAILED $target ($((SECONDS - start)) s)" >&2
		failed+=("$target")
	fi
done
if ((${#failed[@]})); then
	echo "build-matrix: ${failed[*]} did not build" >&2
	exit 1
fi
