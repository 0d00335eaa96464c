// Command llmscope records every call an application makes to an
// OpenAI-style LLM API and shows where the tokens, money and time go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `llmscope: observability for OpenAI-style LLM APIs

Usage: llmscope <command> [flags]

Commands:
  serve     gateway + dashboard + JSON API on one address
  sim       run the simulated OpenAI-compatible upstream alone
  chat      interactive chat showing what every answer costs
  calls     list recorded calls, newest first
  stats     summary table per model, experiment, run, user… (--group-by): calls, errors, tokens, cost, latency
  export    every call as CSV or JSONL, for pandas
  report    charts (PNG and SVG) and summary.md
  sweep     run a prompt set over a parameter grid, one MLflow run per configuration
  tokens    print the token count of stdin's text under a model's encoding
  cost      print the US dollar cost of tokens on a model
  prices    list the price table in use; prices update fetches a newer one
  version   print version and build info
  bench     load harness: gateway overhead against direct and a bare reverse proxy
  demo      send a few minutes of varied traffic to a running serve (simulator only)
  keys      client keys in the store: keys create|list|revoke|rotate (secrets shown once)
  migrate   copy every call of a SQLite store into a Postgres store (--from FILE --to postgres://…)

Run "llmscope <command> --help" for a command's flags.
`

func main() {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if len(os.Args) > 1 && os.Args[1] == "chat" {
		sigs = sigs[1:] // in the chat, Ctrl-C stops a reply, not the program
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func(context.Context, []string, io.Reader, io.Writer, io.Writer) error{
		"serve":   runServe,
		"sim":     runSim,
		"chat":    runChat,
		"calls":   runCalls,
		"stats":   runStats,
		"export":  runExport,
		"report":  runReport,
		"sweep":   runSweep,
		"tokens":  runTokens,
		"cost":    runCost,
		"prices":  runPrices,
		"version": runVersion,
		"bench":   runBench,
		"demo":    runDemo,
		"migrate": runMigrate,
		"keys":    runKeys,
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if name == "--version" || name == "-version" {
		name = "version"
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "llmscope: unknown command %q\n\n%s", name, usage)
		return 2
	}
	err := cmd(ctx, args[1:], stdin, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "llmscope %s: %v\n", name, err)
		return 1
	}
}

// errUsage marks a command line that could not be parsed; the flag package
// has already said why.
var errUsage = errors.New("usage")
