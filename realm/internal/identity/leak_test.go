package identity

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests: the
// step-up tests run a NATS server, whose goroutines must end with it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
