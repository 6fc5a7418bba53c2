//go:build linux

package cpuload

import (
	"fmt"
	"os"
	"time"
)

// machineIdle is the idle time of all the machine's cores, from the
// aggregate line of /proc/stat.
func machineIdle() (time.Duration, bool, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false, fmt.Errorf("cpuload: %w", err)
	}
	idle, err := ParseProcStat(b)
	if err != nil {
		return 0, false, err
	}
	return idle, true, nil
}
