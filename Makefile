# llmscope: `make serve` runs the gateway on the embedded defaults;
# `make test` installs what the tests need and runs the whole suite.

GO ?= go
BIN ?= bin/llmscope
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# -trimpath and -s -w: a smaller binary (no symbol table or DWARF), the same
# flags as .goreleaser.yaml and scripts/build-matrix.sh.
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build serve demo test test-deps bench bench-tokenizer loadtest tail tail-pinned fuzz vet

build:
	@echo "building $(BIN) $(VERSION): the first build compiles about 400 packages (about 50 s on 2 cores); later ones take a second or two" >&2
	@{ CGO_ENABLED=0 $(GO) build -v -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/llmscope 2>&1; echo "exit $$?"; } | \
		awk -v tty="$$(test -t 2 && echo 1)" '/^exit [0-9]+$$/ { if (n) printf "%s", (tty ? "\n" : ""); code = $$2; next } \
		/^[A-Za-z0-9._~\/-]+$$/ { n++; if (tty) printf "\r  compiled %d packages", n; else if (n % 50 == 0) printf "  compiled %d packages\n", n; fflush(); next } \
		{ print } END { if (n) printf "  compiled %d packages in all\n", n; exit code }' >&2

serve: build
	./$(BIN) serve

# demo: two minutes of varied traffic to a serve running in another terminal
# (make serve), so the dashboard, stats and report have something to show.
demo: build
	./$(BIN) demo

test-deps:
	./scripts/test-deps.sh

test: test-deps
	./scripts/test.sh

vet:
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./gateway/ ./sqlite/ ./tokenizer/

# The tokenizer beside OpenAI's reference tiktoken (Python, Rust core), on
# the same texts in one run; makes the tiktoken virtualenv on first use.
bench-tokenizer:
	./scripts/tokenizer-bench.sh

# The load harness: every scenario in one run, reports in bench/.
loadtest: build
	mkdir -p bench
	./$(BIN) bench --json bench/bench.json --md bench/bench.md

# The tail guard: added p50, p99 and p99.9 and throughput of the gateway
# against the bare reverse proxy, every request kind, one client and 16, in
# under two minutes. Run it before a change lands; it is not a CI gate (a
# timing on a shared machine must never fail a build). TAIL_SCENARIOS adds
# gateway+capture or gateway+slowstore.
TAIL_SCENARIOS ?= direct,gateway,reverseproxy
tail: build
	./$(BIN) bench --scenarios $(TAIL_SCENARIOS) --rate 0 --concurrency 16 --duration 2s --warmup 500ms --settle-limit 3s

# The same with the load client and the simulator on CPU 0 and the gateway
# and the proxy on CPU 1 (one P each): the gateway's own tail, apart from
# the CPU it takes from the client (scripts/tail-pinned.sh; needs taskset).
tail-pinned: build
	./scripts/tail-pinned.sh --scenarios $(TAIL_SCENARIOS) --rate 0 --concurrency 16 --duration 2s --warmup 500ms --settle-limit 3s

# Short fuzzing of every parser (FUZZTIME per target).
FUZZTIME ?= 20s
fuzz:
	for f in FuzzParseRequest FuzzReadBody FuzzStream FuzzScanObject FuzzReadBodyFast FuzzEventFast FuzzRelayDeferred FuzzCapture; do \
		$(GO) test ./openai/ -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; done
	for f in FuzzEncodeMatchesOracle FuzzSplitMatchesRegexp; do \
		$(GO) test ./tokenizer/ -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; done
	for f in FuzzParseSpec FuzzReadDataset; do \
		$(GO) test ./sweep/ -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; done
	for f in FuzzAnthropicStream FuzzAnthropicBody FuzzTextDelta; do \
		$(GO) test ./anthropic/ -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; done
	for f in FuzzGeminiEvents FuzzGeminiBody; do \
		$(GO) test ./gemini/ -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; done
	for f in FuzzRedact FuzzFindKeys; do \
		$(GO) test . -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; done
	$(GO) test ./route/ -run '^$$' -fuzz '^FuzzRetryAfter$$' -fuzztime $(FUZZTIME)
	$(GO) test ./sim/ -run '^$$' -fuzz '^FuzzProviderBodies$$' -fuzztime $(FUZZTIME)
	$(GO) test ./auth/ -run '^$$' -fuzz '^FuzzWrap$$' -fuzztime $(FUZZTIME)
	$(GO) test ./gateway/ -run '^$$' -fuzz '^FuzzBadPath$$' -fuzztime $(FUZZTIME)
	$(GO) test ./cmd/llmscope/ -run '^$$' -fuzz '^FuzzServe$$' -fuzztime $(FUZZTIME)
