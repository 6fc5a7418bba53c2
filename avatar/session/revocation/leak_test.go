package revocation

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests: a
// Broadcaster retries stores in the background, and each attempt must end
// when it closes.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
