package xr

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/zerorealm/zerorealm/internal/netstamp"
)

func TestMain(m *testing.M) {
	if n := os.Getenv(xrBenchClientEnv); n != "" {
		runXRBenchClient(n) // a benchmark's child process: never returns
	}
	// The kernel's stamping switch is held on for the whole run, so that
	// no test's first datagrams race the worker that turns it on.
	if err := netstamp.HoldKernelStamping(); err != nil {
		fmt.Fprintln(os.Stderr, "xr tests:", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}
