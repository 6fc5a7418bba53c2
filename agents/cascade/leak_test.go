package cascade

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests: the
// background store attempts must end with Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
