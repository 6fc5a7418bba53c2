package command

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests: the
// service starts simulated gateways and subscriptions, and each must end
// when the service closes.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
