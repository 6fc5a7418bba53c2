package realm

import (
	"testing"

	"go.uber.org/goleak"
)

// benchClientMain, when set, runs before the tests: a benchmark's child
// process (benchclient_test.go) does its work there and exits.
var benchClientMain func()

// TestMain fails the test binary when goroutines outlive its tests: this
// package starts goroutines, and each must end when what started it stops.
func TestMain(m *testing.M) {
	if benchClientMain != nil {
		benchClientMain()
	}
	goleak.VerifyTestMain(m)
}
