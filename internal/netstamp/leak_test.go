package netstamp

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The kernel's stamping switch is held on for the whole run, so that
	// no test's first segment races the worker that turns it on.
	if err := HoldKernelStamping(); err != nil {
		fmt.Fprintln(os.Stderr, "netstamp tests:", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}
