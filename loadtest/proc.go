package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100
// on every Linux this runs on).
const clockTick = 10 * time.Millisecond

// CPUTime returns the user plus system CPU time process pid has used so
// far, all its threads, from /proc/PID/stat (10 ms resolution).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	return parseStat(b)
}

// parseStat returns utime+stime of a /proc/PID/stat line.
func parseStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')') // the command name may hold spaces and parentheses
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat %q", b)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc stat %q", b)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// Memory is a process's resident memory, in bytes.
type Memory struct {
	RSS  uint64 `json:"rss_bytes"`  // VmRSS: resident now
	Peak uint64 `json:"peak_bytes"` // VmHWM: the most resident since start or the last ResetPeak
}

// ReadMemory returns VmRSS and VmHWM of process pid from /proc/PID/status.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, fmt.Errorf("memory of %d: %w", pid, err)
	}
	return parseStatus(b)
}

// parseStatus returns VmRSS and VmHWM of a /proc/PID/status text.
func parseStatus(b []byte) (Memory, error) {
	var m Memory
	var found int
	for line := range bytes.Lines(b) {
		var dst *uint64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &m.RSS
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &m.Peak
		default:
			continue
		}
		f := bytes.Fields(line)
		if len(f) != 3 || string(f[2]) != "kB" {
			return m, fmt.Errorf("malformed /proc status line %q", line)
		}
		kb, err := strconv.ParseUint(string(f[1]), 10, 64)
		if err != nil {
			return m, fmt.Errorf("malformed /proc status line %q: %w", line, err)
		}
		*dst = kb << 10
		found++
	}
	if found != 2 {
		return m, fmt.Errorf("/proc status without VmRSS and VmHWM")
	}
	return m, nil
}

// ResetPeak sets process pid's VmHWM back to its current RSS (Linux ≥ 4.0,
// by writing 5 to /proc/PID/clear_refs), so a later ReadMemory's Peak is the
// peak since now.
func ResetPeak(pid int) error {
	if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak rss of %d: %w", pid, err)
	}
	return nil
}

// Settle waits until every process in pids is idle: it used at most one
// clock tick of CPU (10% of a core) during one 100 ms poll. It gives up
// after limit. Work a phase leaves behind (store commits, exports,
// garbage collection) is then done before the next phase, and is charged
// to the phase that caused it.
func Settle(ctx context.Context, limit time.Duration, pids ...int) error {
	deadline := time.Now().Add(limit)
	prev := make([]time.Duration, len(pids))
	for i, pid := range pids {
		t, err := CPUTime(pid)
		if err != nil {
			return err
		}
		prev[i] = t
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		idle := true
		for i, pid := range pids {
			t, err := CPUTime(pid)
			if err != nil {
				return err
			}
			if t-prev[i] > clockTick {
				idle = false
			}
			prev[i] = t
		}
		if idle || time.Now().After(deadline) {
			return nil
		}
	}
}

// SystemTimes is what every core of the machine has spent since boot, from
// /proc/stat.
type SystemTimes struct {
	Busy   time.Duration // user, nice, system, irq, softirq, steal
	IOWait time.Duration // idle with disk I/O outstanding
	Steal  time.Duration // taken by the hypervisor (also in Busy)
}

// SystemCPU returns the machine's CPU times since boot.
func SystemCPU() (SystemTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return SystemTimes{}, fmt.Errorf("system cpu: %w", err)
	}
	return parseSystemStat(b)
}

func parseSystemStat(b []byte) (SystemTimes, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return SystemTimes{}, fmt.Errorf("malformed /proc/stat line %q", line)
	}
	var ticks [9]int64 // f[1..8]: user nice system idle iowait irq softirq steal
	for i := 1; i <= 8; i++ {
		n, err := strconv.ParseInt(string(f[i]), 10, 64)
		if err != nil {
			return SystemTimes{}, fmt.Errorf("malformed /proc/stat: %w", err)
		}
		ticks[i] = n
	}
	busy := ticks[1] + ticks[2] + ticks[3] + ticks[6] + ticks[7] + ticks[8]
	return SystemTimes{Busy: time.Duration(busy) * clockTick, IOWait: time.Duration(ticks[5]) * clockTick,
		Steal: time.Duration(ticks[8]) * clockTick}, nil
}
