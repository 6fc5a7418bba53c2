package chaos

import (
	"context"
	"testing"
	"time"
)

// warmUp is the calm before the first fault and after each.
const warmUp = 2 * time.Second

// TestChaosLedgerLeaderKilled is the short scenario of the normal test
// run: three nats-server processes and two realm nodes, a workload of
// transfers and sign-ins through both nodes, and a SIGKILL of the server
// leading the ledger's stream, started again 3 s later. Nothing may be
// lost, duplicated or answered outside docs/errors.md.
func TestChaosLedgerLeaderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nats-server and zerorealm and runs them as processes")
	}
	bins := binaries(t)
	d, err := StartCluster(context.Background(), bins, t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	runScenario(t, d, 4, 2, []Fault{KillNATS("SIGKILL of the ledger's stream leader", 3*time.Second, d.LedgerLeader)}, false)
}
