package chaos

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests: the
// harness watches processes and readiness in goroutines of its own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
