package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func runVersion(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) error {
	commit, dirty, when := "unknown", "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = " (modified)"
				}
			case "vcs.time":
				when = " " + s.Value
			}
		}
	}
	fmt.Fprintf(stdout, "llmscope %s\ncommit %s%s%s\n%s %s/%s\n", version, commit, dirty, when, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
