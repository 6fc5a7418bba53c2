package agents

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// storedCounters reads a key of the minute's usage as the store holds it.
func storedCounters(t *testing.T, g *Guard, key string) (counters, uint64) {
	t.Helper()
	e, err := g.usage.minute.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("usage %s: %v", key, err)
	}
	var c counters
	if err := json.Unmarshal(e.Value, &c); err != nil {
		t.Fatal(err)
	}
	return c, e.Revision
}

// spendUntilRefused spends commands at g until the rate refuses one, and
// returns how many it spent.
func spendUntilRefused(t *testing.T, g *Guard, a *Agent) int {
	t.Helper()
	for n := 0; n <= 100; n++ {
		if err := g.Spend(context.Background(), a, command(RiskLow)); err != nil {
			wantReason(t, err, ReasonRate)
			return n
		}
	}
	t.Fatal("no refusal after 100 commands")
	return 0
}

// leasedOne is a node whose agent (30 commands a minute) has spent one
// command, with the minute's key of its usage.
func leasedOne(t *testing.T) (*Guard, *Chain, *Agent, string) {
	t.Helper()
	r := newTestRealm(t)
	g := r.node(t, Config{})
	agent := agentKey(t)
	c := issue(t, r.key, rootGrant(agent)) // 30 commands a minute
	a := mustAgent(t, g, c, agent)
	if err := g.Spend(context.Background(), a, command(RiskLow)); err != nil {
		t.Fatal(err)
	}
	return g, c, a, c.Root().ID + "." + r.clock.Now().UTC().Format("200601021504")
}

// A node leases part of a limit with the compare-and-set that spends an
// action, and spends the next actions from its lease without writing to
// the store, until the lease is gone; the limit is still exact.
func TestLeaseSpendsWithoutTheStore(t *testing.T) {
	g, c, a, key := leasedOne(t)
	// One command and a quarter of the 29 left: 1 + 7 reserved.
	reserved, rev := storedCounters(t, g, key)
	if reserved[c.Root().ID] != 8 {
		t.Fatalf("reserved after the first command: %v, want 8", reserved)
	}
	for range 7 {
		if err := g.Spend(context.Background(), a, command(RiskLow)); err != nil {
			t.Fatal(err)
		}
	}
	if _, again := storedCounters(t, g, key); again != rev {
		t.Fatalf("the store was written (revision %d to %d) by commands the lease covered", rev, again)
	}
	d := evaluate(t, g, a, command(RiskLow))
	if used := d.Context()["used"].(map[string]any)["minute_commands"]; used != int64(8) {
		t.Fatalf("context.agent.used.minute_commands = %v, want 8", used)
	}
	if err := g.Spend(context.Background(), a, command(RiskLow)); err != nil {
		t.Fatal(err)
	}
	if _, again := storedCounters(t, g, key); again == rev {
		t.Fatal("the lease was spent, and the next command reserved nothing")
	}
	if n := spendUntilRefused(t, g, a); n != 30-9 {
		t.Fatalf("%d more commands after 9, want 21: the whole limit, no more", n)
	}
	d = evaluate(t, g, a, command(RiskLow))
	wantReason(t, d.Err, ReasonRate)
	if used := d.Context()["used"].(map[string]any)["minute_commands"]; used != int64(30) {
		t.Fatalf("context.agent.used.minute_commands = %v, want 30", used)
	}
}

// What one node leased and has not spent counts as used for every other
// node (a node that stops without giving it back loses it to the period:
// the limit errs towards refusing); Close gives it back.
func TestLeaseHeldByAnotherNodeAndGivenBack(t *testing.T) {
	r := newTestRealm(t)
	nodeA, nodeB := r.node(t, Config{}), r.node(t, Config{})
	agent := agentKey(t)
	c := issue(t, r.key, rootGrant(agent)) // 30 commands a minute
	onA, onB := mustAgent(t, nodeA, c, agent), mustAgent(t, nodeB, c, agent)

	if err := nodeA.Spend(context.Background(), onA, command(RiskLow)); err != nil {
		t.Fatal(err) // node A holds 7 more
	}
	if n := spendUntilRefused(t, nodeB, onB); n != 30-8 {
		t.Fatalf("node B spent %d while node A held a lease of 7, want 22", n)
	}
	d := evaluate(t, nodeB, onB, command(RiskLow))
	wantReason(t, d.Err, ReasonRate)
	if used := d.Context()["used"].(map[string]any)["minute_commands"]; used != int64(30) {
		t.Fatalf("node B sees %v used, want 30 (node A's lease counts)", used)
	}

	nodeA.Close()
	if n := spendUntilRefused(t, nodeB, onB); n != 7 {
		t.Fatalf("node B spent %d after node A gave its lease back, want 7", n)
	}
}

// A sub-agent's command reserves from its parent's block too, and the
// parent spends from the lease the sub-agent's reservation made.
func TestLeaseSharedAlongTheChain(t *testing.T) {
	r := newTestRealm(t)
	g := r.node(t, Config{})
	agent, sub := agentKey(t), agentKey(t)
	root := issue(t, r.key, rootGrant(agent)) // 30 a minute
	derived, err := Derive(root, agent, subGrant(sub))
	if err != nil {
		t.Fatal(err)
	}
	parent, child := mustAgent(t, g, root, agent), mustAgent(t, g, derived, sub)
	if n := spendUntilRefused(t, g, child); n != 10 {
		t.Fatalf("the sub-agent spent %d, want its own 10", n)
	}
	if n := spendUntilRefused(t, g, parent); n != 20 {
		t.Fatalf("the parent spent %d after its sub-agent's 10, want 20", n)
	}
}

// Leases of past periods are dropped as new ones are made; current ones
// stay, however many.
func TestLeasesOfPastPeriodsAreDropped(t *testing.T) {
	r := newTestRealm(t)
	g := r.node(t, Config{})
	now := r.clock.Now()
	for i := range 300 {
		g.usage.minuteLease(fmt.Sprint("dg_past", i), now)
	}
	later := now.Add(2 * time.Minute)
	for i := range 600 {
		g.usage.minuteLease(fmt.Sprint("dg_now", i), later)
	}
	g.usage.mu.Lock()
	defer g.usage.mu.Unlock()
	for id, l := range g.usage.leases {
		if !l.ends.After(later) {
			t.Fatalf("lease %v of a past minute kept", id)
		}
	}
	if n := len(g.usage.leases); n != 600 {
		t.Fatalf("%d leases, want the 600 current ones", n)
	}
}

// A key removed within its period (a clock far behind, a purge) took every
// reservation with it: the node spends what its lease still holds, then
// reserves again from nothing, within the limit, rather than retry
// against a revision that is gone.
func TestLeaseOfARemovedKeyIsDropped(t *testing.T) {
	g, c, a, key := leasedOne(t) // holds 7 more
	_, rev := storedCounters(t, g, key)
	if err := g.usage.minute.Delete(context.Background(), key, rev); err != nil {
		t.Fatal(err)
	}
	if n := spendUntilRefused(t, g, a); n != 7+30 {
		t.Fatalf("%d commands after the key was removed, want the 7 leased before and 30 reserved anew", n)
	}
	if reserved, _ := storedCounters(t, g, key); reserved[c.Root().ID] != 30 {
		t.Fatalf("reserved %v anew, want the limit of 30", reserved)
	}
}
