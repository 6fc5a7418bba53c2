package agents

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests: the
// revocations mirror follows a change feed, which must end with Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
