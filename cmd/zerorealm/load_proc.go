package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTicksPerSecond is the unit of the CPU times in /proc/<pid>/stat
// (USER_HZ), 100 on every Linux architecture Go builds for.
const clockTicksPerSecond = 100

// procSample is a process's CPU time and memory as /proc shows them.
type procSample struct {
	ok      bool
	cpu     time.Duration // user and system
	rss     int64         // bytes
	threads int
	// waited is how long its threads waited for a core while runnable
	// (/proc/<pid>/task/*/schedstat): a realm that waits is measured on a
	// machine too busy to say what it could do.
	waited time.Duration
}

// realmProc reads the realm's process, when --realm-pid names it.
func (r *loadRun) realmProc() procSample {
	if r.f.realmPID == 0 {
		return procSample{}
	}
	s, err := readProc(r.f.realmPID)
	if err != nil {
		fmt.Fprintf(r.out, "realm process  %v\n", err)
		return procSample{}
	}
	return s
}

// readProc reads /proc/<pid>/stat and /proc/<pid>/status.
func readProc(pid int) (procSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("read the realm's process: %w", err)
	}
	s, err := parseProcStat(stat)
	if err != nil {
		return procSample{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("read the realm's process: %w", err)
	}
	if s.rss, err = parseProcRSS(status); err != nil {
		return procSample{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	s.waited = threadsWaited(pid)
	s.ok = true
	return s, nil
}

// threadsWaited sums the run-queue wait of the process's threads, the
// second field of each /proc/<pid>/task/<tid>/schedstat; 0 where the
// kernel keeps no schedstats.
func threadsWaited(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total time.Duration
	for _, path := range tasks {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // the thread ended
		}
		if f := bytes.Fields(data); len(f) == 3 {
			if ns, err := strconv.ParseInt(string(f[1]), 10, 64); err == nil {
				total += time.Duration(ns)
			}
		}
	}
	return total
}

// loadAverage is the machine's one-minute load average, "" when unknown.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	if f := bytes.Fields(data); len(f) >= 3 {
		return fmt.Sprintf("%s %s %s", f[0], f[1], f[2])
	}
	return ""
}

// parseProcStat reads utime, stime (fields 14 and 15) and num_threads (20)
// of /proc/<pid>/stat. The command name, field 2, is in parentheses and
// may hold spaces, so fields are counted after its closing parenthesis.
func parseProcStat(stat []byte) (procSample, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return procSample{}, fmt.Errorf("no command name in %.40q", stat)
	}
	fields := bytes.Fields(stat[end+1:]) // fields[0] is field 3, the state
	if len(fields) < 18 {
		return procSample{}, fmt.Errorf("%d fields after the command name, want at least 18", len(fields))
	}
	num := func(field int) (int64, error) { return strconv.ParseInt(string(fields[field-3]), 10, 64) }
	utime, err1 := num(14)
	stime, err2 := num(15)
	threads, err3 := num(20)
	if err1 != nil || err2 != nil || err3 != nil {
		return procSample{}, fmt.Errorf("utime, stime or num_threads is not a number")
	}
	return procSample{cpu: time.Duration(utime+stime) * time.Second / clockTicksPerSecond, threads: int(threads)}, nil
}

// parseProcRSS reads VmRSS of /proc/<pid>/status, in bytes.
func parseProcRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, found := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !found {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want a number of kB", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS %q: %w", f[0], err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS line")
}
