package cpuload

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// clockTick is the unit of /proc/stat's times. The kernel reports them in
// USER_HZ, which is 100 on every architecture Linux runs on today (its ABI
// fixed it so that sysconf(_SC_CLK_TCK) would not have to be asked).
const clockTick = 10 * time.Millisecond

// ParseProcStat reads the machine's idle time, summed over its cores, from
// the contents of /proc/stat: the aggregate "cpu" line's idle and iowait
// columns (the fourth and fifth). A core waiting on I/O is free to run
// anything else, so for a node's CPU it is idle.
func ParseProcStat(b []byte) (time.Duration, error) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		fields := bytes.Fields(line)
		if len(fields) == 0 || string(fields[0]) != "cpu" {
			continue
		}
		if len(fields) < 6 {
			return 0, fmt.Errorf("cpuload: /proc/stat: the cpu line has %d columns, want at least 5", len(fields)-1)
		}
		var ticks uint64
		for _, f := range fields[4:6] {
			n, err := strconv.ParseUint(string(f), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cpuload: /proc/stat: cpu column %q: %w", f, err)
			}
			if n > math.MaxInt64/uint64(clockTick)-ticks {
				return 0, fmt.Errorf("cpuload: /proc/stat: idle time %d ticks overflows", n)
			}
			ticks += n
		}
		return time.Duration(ticks) * clockTick, nil
	}
	return 0, errors.New("cpuload: /proc/stat has no aggregate cpu line")
}
