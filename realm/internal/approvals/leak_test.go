package approvals

import (
	"testing"

	"go.uber.org/goleak"
)

// The part runs the node's reconciler (Reconcile): nothing of it may
// outlive its context.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
