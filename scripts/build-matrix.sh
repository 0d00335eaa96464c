#!/usr/bin/env bash
# Cross-compiles llmscope for the release targets of .goreleaser.yaml
# (linux, darwin × amd64, arm64) with the same flags, into OUT
# (default bin/matrix, ignored by git): a dry run of the release build that needs no
# goreleaser. The targets share the build cache with the host build.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bin/matrix}"
VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
mkdir -p "$OUT"
for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64; do
	os="${target%/*}" arch="${target#*/}"
	start=$SECONDS
	CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" go build -trimpath \
		-ldflags "-s -w -X main.version=$VERSION" \
		-o "$OUT/llmscope_${os}_${arch}" ./cmd/llmscope
	echo "built $OUT/llmscope_${os}_${arch} ($(du -h "$OUT/llmscope_${os}_${arch}" | cut -f1), $((SECONDS - start)) s)"
done
