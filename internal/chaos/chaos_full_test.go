//go:build chaos

package chaos

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

// TestChaosCluster is the full scenario on a 3-node NATS cluster and two
// realm nodes: a SIGKILL of a NATS server that leads nothing of the
// ledger, of the ledger's stream leader, of a realm node, and the loss of
// quorum (two servers SIGKILLed at once), each healed after a while.
func TestChaosCluster(t *testing.T) {
	bins := binaries(t)
	d, err := StartCluster(context.Background(), bins, t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	runScenario(t, d, 6, 3, []Fault{
		KillNATS("SIGKILL of a NATS server (not the ledger's leader)", 5*time.Second, d.NotLedgerLeader),
		KillNATS("SIGKILL of the ledger's stream leader", 5*time.Second, d.LedgerLeader),
		KillRealm(d.Realms[1], 5*time.Second),
		KillNATS("loss of quorum (two of three NATS servers SIGKILLed)", 8*time.Second, d.Majority),
	}, false)
}

// TestChaosFullDisk runs one realm node on its embedded store on a small
// tmpfs (skipped where the test cannot mount one) and fills the disk
// under the workload, then frees it: writes are refused with
// insufficient-storage, /readyz turns, and writes resume without a
// restart.
func TestChaosFullDisk(t *testing.T) {
	bins := binaries(t)
	disk := natstest.SmallDisk(t, 256<<20)
	dir := t.TempDir()
	d, err := StartEmbedded(context.Background(), bins, dir, filepath.Join(disk, "realm"), 32)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	rep := runScenario(t, d, 4, 3, []Fault{FillDisk(disk, 5*time.Second)}, true)
	if f := rep.Faults[0]; f.WritesResume < 0 || f.WritesResume > 5*time.Second {
		t.Errorf("writes resumed %s after space returned, want within 5s", f.WritesResume)
	}
}
