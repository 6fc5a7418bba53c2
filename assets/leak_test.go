package assets

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests: this
// package starts goroutines, and each must end when what started it stops.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
