package sdkjs

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests: the
// Chromium test starts a realm and a proxy, and each must end with it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
