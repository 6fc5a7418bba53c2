package natstest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests: these tests start NATS servers and clusters,
// and each goroutine must end when what started it stops.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
