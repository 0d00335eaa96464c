# syntax=docker/dockerfile:1
# llmscope in a container: docker build -t llmscope . &&
#   docker run -p 8700:8700 -e LLMSCOPE_ADMIN_TOKEN=$(openssl rand -hex 32) -v llmscope:/data llmscope
# The gateway listens on 0.0.0.0:8700 inside the container, so it wants an
# admin token (LLMSCOPE_ADMIN_TOKEN) and exits saying so without one; see
# README "Running it for a team" (client keys, --allowed-hosts, TLS).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# The same flags as the Makefile, .goreleaser.yaml and scripts/build-matrix.sh.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/llmscope ./cmd/llmscope \
 && mkdir -p /out/data

# Static binary (pure-Go SQLite): a distroless image with CA certificates
# (for https upstreams) and a non-root user, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/llmscope /usr/local/bin/llmscope
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV LLMSCOPE_DB=/data/llmscope.db
VOLUME /data
EXPOSE 8700
ENTRYPOINT ["/usr/local/bin/llmscope"]
CMD ["serve", "--addr", "0.0.0.0:8700"]
