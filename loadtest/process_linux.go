package loadtest

import "syscall"

// childAttr makes a child process get SIGTERM when the harness dies, so no
// gateway or simulator outlives a crashed run.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
