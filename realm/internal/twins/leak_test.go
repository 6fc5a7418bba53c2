package twins

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests: each
// console feed runs a reader and a session watcher, which must end with it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
