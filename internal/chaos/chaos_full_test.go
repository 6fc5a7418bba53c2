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

// TestLedgerLeaderElection measures what stalls writes when the ledger's
// leader is SIGKILLed (docs/chaos.md): how long the ledger's stream takes
// to have a new leader, and the realm node to be ready again (every stream
// and bucket it writes led). Figures only: nothing here is asserted of
// time.
func TestLedgerLeaderElection(t *testing.T) {
	ctx := context.Background()
	d, err := StartCluster(ctx, binaries(t), t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	for round := range 3 {
		leader, err := d.StreamLeader(ctx, "LEDGER")
		if err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		leader.Kill()
		for {
			// A short question: one to a stream without a leader waits
			// for its whole timeout.
			qctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
			p, err := d.StreamLeader(qctx, "LEDGER")
			cancel()
			if err == nil && p != leader {
				break
			}
			if time.Since(killed) > readyWait {
				t.Fatalf("no new leader of the ledger within %s", readyWait)
			}
			time.Sleep(50 * time.Millisecond)
		}
		elected := time.Since(killed)
		if err := d.Realms[0].WaitReady(ctx, readyWait); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %s SIGKILLed; the ledger has a new leader after %.2fs, the realm node is ready after %.2fs", round+1, leader.Name, elected.Seconds(), time.Since(killed).Seconds())
		if err := leader.Start(); err != nil {
			t.Fatal(err)
		}
		// Until the restarted server has caught up and the node is ready.
		time.Sleep(5 * time.Second)
		if err := d.Realms[0].WaitReady(ctx, readyWait); err != nil {
			t.Fatal(err)
		}
	}
}
