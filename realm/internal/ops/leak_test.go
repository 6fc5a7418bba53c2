package ops

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests: the
// probe loop and the NATS server the tests run must end with them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
