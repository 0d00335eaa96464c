//go:build !linux

package loadtest

import "syscall"

// childAttr is empty where the kernel cannot signal a child when its parent
// dies: the harness stops its children itself.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
