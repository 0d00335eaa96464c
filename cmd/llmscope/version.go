package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=…" (the
// Makefile, .goreleaser.yaml and scripts/build-matrix.sh do); without it,
// versionInfo falls back on what the go command recorded in the binary.
var version = "dev"

// runVersion prints the version, the commit and the toolchain; `llmscope
// --version` and `-version` do the same.
func runVersion(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) error {
	v, commit := versionInfo(version, readBuildInfo())
	fmt.Fprintf(stdout, "llmscope %s\ncommit %s\n%s %s/%s\n", v, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// readBuildInfo is debug.ReadBuildInfo, replaced in tests.
var readBuildInfo = func() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
}

// versionInfo returns the version to print and the commit line. The version
// is the -X one when set; else the module's version (go install …@vX) or,
// from a git checkout built with plain `go build`, the short revision
// (with -dirty when the tree had changes), as git describe would say it.
// The commit is vcs.revision with vcs.time and "(modified)"; "unknown" only
// when the binary carries no VCS information (built outside a checkout, or
// with -buildvcs=false).
func versionInfo(ldVersion string, bi *debug.BuildInfo) (string, string) {
	var rev, when string
	modified := false
	if bi != nil {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			case "vcs.time":
				when = s.Value
			}
		}
	}
	v := ldVersion
	if v == "" || v == "dev" {
		switch {
		case bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)":
			v = bi.Main.Version
		case rev != "":
			v = rev[:min(len(rev), 7)]
			if modified {
				v += "-dirty"
			}
		default:
			v = "dev"
		}
	}
	commit := "unknown (built without VCS information)"
	if rev != "" {
		commit = rev
		if modified {
			commit += " (modified)"
		}
		if when != "" {
			commit += " " + when
		}
	}
	return v, commit
}
