package command

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/twin"
)

// TestApprovedCriticalCommandSettlesOnAnotherNode: two critical pressure
// commands of ada, each approved by grace on node A, the real enrolled
// gateway of press-1 with its journal. Node A stops after carrying out
// the first and before carrying out the second, storing neither outcome
// (both approvals read in_progress). Once node A's lease has passed,
// node B's reconciler settles both: the first from the gateway's
// journal, done with the gateway's acknowledgement and audited as
// resolved; the second, never carried out, decided again for ada with
// grace's approval and carried out. The gateway carried out each once.
func TestApprovedCriticalCommandSettlesOnAnotherNode(t *testing.T) {
	n := startTwoNodesOf(t, "press-1")
	ctx := context.Background()
	ada := n.w.signIn("ada", "press-bay", "operator")
	grace := n.w.signIn("grace", "control-room", "operator", "supervisor")
	ran := newCommand(t, "press-1", "pressure", ada, "critical-ran", 5)
	unsent := newCommand(t, "press-1", "pressure", ada, "critical-unsent", 8)
	// Node A's runs may last a second here; past that, others settle.
	n.a.crit.lease = time.Second
	n.a.crit.stopAt = func(c twin.Command, after bool) bool {
		return c.Hash() == ran.Hash() && after || c.Hash() == unsent.Hash() && !after
	}
	for _, c := range []twin.Command{ran, unsent} {
		n.w.stepUp(ada, c)
		if res, err := n.a.Execute(ctx, ada, c, twin.CommandRequest{}); err != nil || res.Status != StatusPendingApproval {
			t.Fatalf("critical command = %+v, %v; want it waiting for approval", res, err)
		}
		rec, rev, err := n.a.LoadApproval(ctx, c.Hash().Hex())
		if err != nil {
			t.Fatal(err)
		}
		n.w.stepUp(grace, c)
		if got, err := n.a.DecideApproval(ctx, grace, rec, rev, true); err != nil || got.Status != StatusInProgress || got.Lease.IsZero() {
			t.Fatalf("approved on node A, which stops = %+v, %v; want in_progress with a lease", got, err)
		}
	}
	if got := n.gw.Accepted(); got != 1 {
		t.Fatalf("the gateway carried out %d grants before node A stopped, want 1", got)
	}
	n.a.Close()

	settled := map[string]Approval{}
	waitFor(t, "node B to settle both approved commands", func() bool {
		for _, c := range []twin.Command{ran, unsent} {
			rec, _, err := n.b.LoadApproval(ctx, c.Hash().Hex())
			if err != nil || rec.Status == StatusInProgress {
				return false
			}
			settled[c.Key] = rec
		}
		return true
	})
	gatewayKey := n.b.Gateways().keyHex("press-1")
	for _, c := range []twin.Command{ran, unsent} {
		rec := settled[c.Key]
		if rec.Status != StatusDone || rec.Answer == nil || rec.Answer.Ack == nil || rec.Answer.Ack.Target != c.Value() ||
			!strings.EqualFold(rec.Answer.Ack.Signer, gatewayKey) || rec.Answer.Command.Hash != c.Hash().Hex() {
			t.Fatalf("settled %s = %+v; want done with the gateway's acknowledgement at %v", c.Key, rec, c.Value())
		}
	}
	time.Sleep(500 * time.Millisecond) // more passes change nothing
	if got := n.gw.Accepted(); got != 2 {
		t.Fatalf("the gateway carried out %d grants, want 2: each command once", got)
	}
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	resolved := 0
	for _, ev := range n.w.events {
		if ev.Signals["resolved"] == true && ev.Signals[auditCommand] == ran.Hash().Hex() && ev.Signals[auditResult] == string(twin.ResultDone) {
			resolved++
		}
	}
	if resolved != 1 {
		t.Fatalf("%d audit events of the first command settled from the journal, want 1", resolved)
	}
}
