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
// the contents of /proc/stat: the aggregate "cpu" line's idle column (the
// fourth). Its iowait column (the fifth) is time a core was idle too, but
// the kernel does not keep it monotonic (a core's iowait is reassigned as
// tasks move), so a rate over it could go negative; leaving it out counts
// a core waiting on I/O as busy, which errs on the side of not admitting.
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
		if len(fields) < 5 {
			return 0, fmt.Errorf("cpuload: /proc/stat: the cpu line has %d columns, want at least 4", len(fields)-1)
		}
		ticks, err := strconv.ParseUint(string(fields[4]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpuload: /proc/stat: cpu idle column %q: %w", fields[4], err)
		}
		if ticks > math.MaxInt64/uint64(clockTick) {
			return 0, fmt.Errorf("cpuload: /proc/stat: idle time %d ticks overflows", ticks)
		}
		return time.Duration(ticks) * clockTick, nil
	}
	return 0, errors.New("cpuload: /proc/stat has no aggregate cpu line")
}
