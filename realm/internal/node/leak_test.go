package node

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests: the
// registry's heartbeat and watch, and the NATS server, must end with them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
