//go:build !unix

package cpuload

import (
	"errors"
	"time"
)

// processCPU is not measured where there is no getrusage: a Meter then
// has no rates, and whoever admits by them admits as if unmeasured.
func processCPU() (time.Duration, error) {
	return 0, errors.New("cpuload: this system's process CPU time is not measured")
}
