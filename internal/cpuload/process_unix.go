//go:build unix

package cpuload

import (
	"fmt"
	"syscall"
	"time"
)

// processCPU is this process's user and system CPU time, from getrusage.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("cpuload: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
