package synth

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
