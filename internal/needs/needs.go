// Package needs finds the external programs integration tests use. A missing
// program fails the test under CI (CI=true) and skips it, loudly, elsewhere.
package needs

import (
	"os"
	"os/exec"
	"testing"
)

// Binary returns the path of program name, or stops the test: t.Fatal under
// CI, t.Skip otherwise. hint says how to install it.
func Binary(t testing.TB, name, hint string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := "\n\n*** " + name + " is not installed: " + hint + " ***\n"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg + "(skipping; under CI=true this test fails)")
	return ""
}
