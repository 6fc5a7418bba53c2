package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/twin"
)

func TestGrantIsCarriedOutAndAcknowledged(t *testing.T) {
	b := newBench(t, benchOptions{})
	c := b.command("press-1", "ram", 40, "k1")
	sa, err := b.disp.Deliver(context.Background(), b.disp.Grant(c, "sess-1", nil))
	if err != nil {
		t.Fatalf("Deliver = %v, want done", err)
	}
	if sa.Ack.Result != twin.ResultDone || sa.Ack.TargetMicro != 40*twin.Micro || sa.Ack.Command != c.Hash() {
		t.Fatalf("ack = %+v, want done with target 40 mm for the command's hash", sa.Ack)
	}
	if r, _ := b.gateways["press-1"].Read("ram"); r.Target != 40 {
		t.Fatalf("ram target = %g, want 40", r.Target)
	}
	if got := b.gateways["press-1"].Accepted(); got != 1 {
		t.Fatalf("Accepted() = %d, want 1", got)
	}
}

// TestGatewayRefuses sends the gateway every kind of bad grant. Each is
// refused with its reason, counted, acknowledged with a signature, and
// nothing moves.
func TestGatewayRefuses(t *testing.T) {
	b := newBench(t, benchOptions{})
	ctx := context.Background()
	forger, _ := twin.GenerateSigner()

	// A grant that has been used once.
	used := b.disp.Grant(b.command("press-1", "ram", 10, "used"), "sess-1", nil)
	if _, err := b.disp.Deliver(ctx, used); err != nil {
		t.Fatalf("first delivery: %v", err)
	}

	signed := func(mut func(*twin.Grant)) []byte {
		g := b.disp.Grant(b.command("press-1", "ram", 20, "k-"+fmt.Sprint(time.Now().UnixNano())), "sess-1", nil).Grant
		mut(&g)
		return b.realm.SignGrant(g).Encode()
	}
	now := time.Now()
	tampered := b.disp.Grant(b.command("press-1", "ram", 20, "tamper"), "sess-1", nil)
	tampered.Grant.ValueMicro = 400 * twin.Micro

	cases := []struct {
		name     string
		twin     string
		actuator string
		data     []byte
		want     twin.Reason
	}{
		{"replayed", "press-1", "ram", used.Encode(), twin.ReasonReplayed},
		{"expired", "press-1", "ram", signed(func(g *twin.Grant) {
			g.NotBefore, g.Expiry = twin.Millis(now.Add(-5*time.Second)), twin.Millis(now.Add(-2*time.Second))
		}), twin.ReasonExpired},
		{"not yet valid", "press-1", "ram", signed(func(g *twin.Grant) {
			g.NotBefore, g.Expiry = twin.Millis(now.Add(5*time.Second)), twin.Millis(now.Add(8*time.Second))
		}), twin.ReasonNotYetValid},
		{"lifetime too long", "press-1", "ram", signed(func(g *twin.Grant) { g.Expiry = g.NotBefore + uint64(time.Hour/time.Millisecond) }), twin.ReasonTooLong},
		{"forged signature", "press-1", "ram", forger.SignGrant(b.disp.Grant(b.command("press-1", "ram", 20, "forged"), "sess-1", nil).Grant).Encode(), twin.ReasonUntrustedKey},
		{"tampered value", "press-1", "ram", tampered.Encode(), twin.ReasonUntrustedKey},
		{"grant for another twin", "press-1", "ram", b.disp.Grant(b.command("robot-1", "base-joint", 20, "foreign"), "sess-1", nil).Encode(), twin.ReasonForeignTwin},
		{"grant for another actuator", "press-1", "ram", signed(func(g *twin.Grant) { g.Actuator = "pressure" }), twin.ReasonUnknownActuator},
		{"critical without approval", "press-1", "pressure", signed(func(g *twin.Grant) { g.Actuator = "pressure" }), twin.ReasonMissingApproval},
		{"critical approved by the requester", "press-1", "pressure", signed(func(g *twin.Grant) {
			g.Actuator, g.Approvers = "pressure", []string{g.Operator}
		}), twin.ReasonMissingApproval},
		{"outside the gateway's envelope", "press-1", "ram", signed(func(g *twin.Grant) { g.ValueMicro = 401 * twin.Micro }), twin.ReasonOutOfRange},
		// Pressure changes at most 10 bar/s and one command may ask for 10 s
		// of motion: 0 to 200 bar is too far for one command.
		{"too far a move", "press-1", "pressure", signed(func(g *twin.Grant) {
			g.Actuator, g.Approvers, g.ValueMicro = "pressure", []string{"av_grace"}, 200*twin.Micro
		}), twin.ReasonRateOfChange},
		{"malformed", "press-1", "ram", []byte(`{"grant":`), twin.ReasonMalformed},
		{"unknown field", "press-1", "ram", []byte(strings.Replace(string(signed(func(*twin.Grant) {})), `"grant":{`, `"grant":{"extra":1,`, 1)), twin.ReasonMalformed},
		{"oversized", "press-1", "ram", []byte(`{"grant":{"twin":"` + strings.Repeat("a", twin.MaxGrantBytes) + `"}}`), twin.ReasonMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := b.gateways[c.twin]
			before, _ := g.Read(c.actuator)
			refusedBefore := g.Refusals()[c.want]
			sa := b.request(c.twin, c.actuator, c.data)
			if sa.Ack.Result != twin.ResultRefused || sa.Ack.Reason != c.want {
				t.Fatalf("Handle(%s) = %s %q (%s), want refused %q", c.name, sa.Ack.Result, sa.Ack.Reason, sa.Ack.Detail, c.want)
			}
			if after, _ := g.Read(c.actuator); after.Target != before.Target {
				t.Errorf("target moved from %g to %g after a refused grant", before.Target, after.Target)
			}
			if got := g.Refusals()[c.want]; got != refusedBefore+1 {
				t.Errorf("Refusals()[%q] = %d, want %d", c.want, got, refusedBefore+1)
			}
		})
	}
}

func TestDispatcherReportsRefusalAsError(t *testing.T) {
	b := newBench(t, benchOptions{})
	sg := b.disp.Grant(b.command("press-1", "ram", 30, "twice"), "sess-1", nil)
	if _, err := b.disp.Deliver(context.Background(), sg); err != nil {
		t.Fatal(err)
	}
	sa, err := b.disp.Deliver(context.Background(), sg)
	if !errors.Is(err, twin.ErrGatewayRefused) || twin.ReasonOf(err) != twin.ReasonReplayed || sa.Ack.Reason != twin.ReasonReplayed {
		t.Fatalf("second Deliver = %v (ack %q), want ErrGatewayRefused with reason replayed", err, sa.Ack.Reason)
	}
}

func TestApprovedCriticalCommandIsCarriedOut(t *testing.T) {
	b := newBench(t, benchOptions{})
	sa, err := b.disp.Deliver(context.Background(), b.disp.Grant(b.command("press-1", "pressure", 50, "p1"), "sess-1", []string{"av_grace"}))
	if err != nil || sa.Ack.Result != twin.ResultDone {
		t.Fatalf("approved critical command = %v, %+v; want done", err, sa.Ack)
	}
}

// TestRevokedBetweenDecisionAndDelivery signs a grant, revokes its session
// and delivers the grant: the gateway refuses it.
func TestRevokedBetweenDecisionAndDelivery(t *testing.T) {
	b := newBench(t, benchOptions{heartbeat: time.Hour})
	sg := b.disp.Grant(b.command("press-1", "ram", 30, "rev"), "sess-doomed", nil)
	if err := b.feed.Revoke("sess-doomed"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return b.gateways["press-1"].Revoked("sess-doomed") }, "the gateway to learn of the revocation")
	_, err := b.disp.Deliver(context.Background(), sg)
	if twin.ReasonOf(err) != twin.ReasonSessionRevoked {
		t.Fatalf("Deliver after revocation = %v, want session_revoked", err)
	}
	// Other sessions are unaffected.
	if _, err := b.disp.Deliver(context.Background(), b.disp.Grant(b.command("press-1", "ram", 30, "other"), "sess-other", nil)); err != nil {
		t.Fatalf("Deliver for another session = %v, want done", err)
	}
}

// TestAgentGrantRefusedOnceItsChainIsRevoked: an agent's grant names its
// delegation chain; revoking the root stops a grant of the sub-agent
// below it, suspending an agent or revoking an owner stops theirs, and
// other chains go on.
func TestAgentGrantRefusedOnceItsChainIsRevoked(t *testing.T) {
	b := newBench(t, benchOptions{heartbeat: time.Hour})
	grant := func(key, agent, owner string, chain ...string) twin.SignedGrant {
		c := b.command("press-1", "ram", 30, key)
		c.Operator = agent
		return b.disp.AgentGrantFor(c, c.Hash(), owner, chain)
	}
	if _, err := b.disp.Deliver(context.Background(), grant("before", "ag_sub", "av_ada", "dg_root", "dg_leaf")); err != nil {
		t.Fatalf("Deliver of an agent's grant = %v, want done", err)
	}
	cases := []struct{ revoke, agent, owner string }{
		{"dg_root", "ag_sub", "av_ada"},    // a root revoked stops what derives from it
		{"ag_rogue", "ag_rogue", "av_bob"}, // a suspended agent
		{"av_eve", "ag_eves", "av_eve"},    // an owner who revoked every agent
	}
	for i, tc := range cases {
		sg := grant(fmt.Sprint("revoked-", i), tc.agent, tc.owner, "dg_root", "dg_leaf")
		if tc.revoke != "dg_root" {
			sg = grant(fmt.Sprint("revoked-", i), tc.agent, tc.owner, "dg_other")
		}
		if err := b.feed.RevokeAgents(tc.revoke); err != nil {
			t.Fatal(err)
		}
		eventually(t, func() bool { return b.gateways["press-1"].AgentRevoked(tc.revoke) }, "the gateway to learn of the revocation")
		_, err := b.disp.Deliver(context.Background(), sg)
		if twin.ReasonOf(err) != twin.ReasonDelegationRevoked || !strings.Contains(err.Error(), tc.revoke) {
			t.Fatalf("Deliver after revoking %s = %v, want delegation_revoked naming it", tc.revoke, err)
		}
	}
	if _, err := b.disp.Deliver(context.Background(), grant("other", "ag_fine", "av_ada", "dg_third")); err != nil {
		t.Fatalf("Deliver of another chain = %v, want done", err)
	}
	// A person's session that happens to be named like a revoked id is
	// not an agent's: the lists are kept apart.
	if _, err := b.disp.Deliver(context.Background(), b.disp.Grant(b.command("press-1", "ram", 30, "person"), "dg_root", nil)); err != nil {
		t.Fatalf("Deliver of a person's grant = %v, want done", err)
	}
}

// TestAgentGrantShape: a grant names either a session (a person) or an
// owner and a chain (an agent), never both or neither.
func TestAgentGrantShape(t *testing.T) {
	b := newBench(t, benchOptions{heartbeat: time.Hour})
	c := b.command("press-1", "ram", 30, "shape")
	for name, mutate := range map[string]func(g *twin.Grant){
		"agent with a session": func(g *twin.Grant) { g.Session = "s1" },
		"agent without owner":  func(g *twin.Grant) { g.Owner = "" },
		"too long a chain":     func(g *twin.Grant) { g.Delegations = make([]string, twin.MaxDelegations+1) },
		"empty delegation id":  func(g *twin.Grant) { g.Delegations = []string{""} },
		"person with an owner": func(g *twin.Grant) { g.Delegations, g.Session = []string{}, "s1" },
	} {
		g := b.disp.AgentGrantFor(c, c.Hash(), "av_ada", []string{"dg_root"}).Grant
		if name == "person with an owner" {
			g.Session = "s1"
		}
		mutate(&g)
		if sa := b.request("press-1", "ram", b.realm.SignGrant(g).Encode()); sa.Ack.Reason != twin.ReasonMalformed {
			t.Errorf("%s: %+v, want malformed", name, sa.Ack)
		}
	}
}

// TestStaleFeedRefusesEverything: once the realm's revocation notices stop
// for longer than FeedTimeout, the gateway cannot tell whether a session
// was revoked, so it refuses every grant.
func TestStaleFeedRefusesEverything(t *testing.T) {
	b := newBench(t, benchOptions{heartbeat: time.Hour, feedTimeout: 2 * time.Second})
	sg := func(k string) twin.SignedGrant {
		return b.disp.Grant(b.command("press-1", "ram", 30, k), "sess-1", nil)
	}
	if _, err := b.disp.Deliver(context.Background(), sg("fresh")); err != nil {
		t.Fatalf("Deliver with a fresh feed = %v", err)
	}
	// The gateway's clock runs 3 s ahead: the last notice is too old. The
	// grant's own window is checked first, so sign it on the same clock.
	b.clock.Advance(3 * time.Second)
	g := b.disp.Grant(b.command("press-1", "ram", 30, "stale"), "sess-1", nil).Grant
	g.NotBefore, g.Expiry = twin.Millis(b.clock.Now()), twin.Millis(b.clock.Now().Add(2*time.Second))
	if sa := b.request("press-1", "ram", b.realm.SignGrant(g).Encode()); sa.Ack.Reason != twin.ReasonFeedStale {
		t.Fatalf("Handle with a stale feed = %s %q, want refused revocation_feed_stale", sa.Ack.Result, sa.Ack.Reason)
	}
}

// TestReconnectedGatewayWaitsForAFreshNotice cuts the gateway's TCP
// connection: after it reconnects it refuses grants until it hears the
// revocation feed again, since notices may have been lost meanwhile.
func TestReconnectedGatewayWaitsForAFreshNotice(t *testing.T) {
	b := newBench(t, benchOptions{heartbeat: time.Hour, feedTimeout: time.Hour, tcp: true})
	deliver := func(k string) error {
		_, err := b.disp.Deliver(context.Background(), b.disp.Grant(b.command("press-1", "ram", 30, k), "sess-1", nil))
		return err
	}
	if err := deliver("before"); err != nil {
		t.Fatalf("Deliver before the cut = %v", err)
	}
	nc := b.conns["press-1"]
	cid, err := nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.emb.Server().DisconnectClientByID(cid); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return nc.Stats().Reconnects >= 1 && nc.IsConnected() }, "the gateway to reconnect")
	// Re-subscription happens on reconnect; wait until requests reach it.
	var err2 error
	eventually(t, func() bool {
		err2 = deliver(fmt.Sprint("after-", time.Now().UnixNano()))
		return twin.ReasonOf(err2) != twin.ReasonNoGateway
	}, "the gateway to answer again")
	if twin.ReasonOf(err2) != twin.ReasonFeedStale {
		t.Fatalf("Deliver after reconnecting = %v, want revocation_feed_stale", err2)
	}
	// An incremental notice may follow lost ones: it does not make the
	// feed fresh again; the next complete one does.
	if err := b.feed.Revoke("someone-else"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return b.gateways["press-1"].Revoked("someone-else") }, "the gateway to learn of the revocation")
	if err := deliver(fmt.Sprint("incremental-", time.Now().UnixNano())); twin.ReasonOf(err) != twin.ReasonFeedStale {
		t.Fatalf("Deliver after an incremental notice = %v, want revocation_feed_stale", err)
	}
	if err := b.feed.Restate(); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return deliver(fmt.Sprint("fresh-", time.Now().UnixNano())) == nil }, "the gateway to accept grants after a fresh notice")
}

func TestEmergencyStop(t *testing.T) {
	b := newBench(t, benchOptions{})
	ctx := context.Background()
	g := b.gateways["robot-1"]
	g.EmergencyStop(ctx, true)
	_, err := b.disp.Deliver(ctx, b.disp.Grant(b.command("robot-1", "gripper", 50, "estop"), "sess-1", nil))
	if twin.ReasonOf(err) != twin.ReasonEmergencyStop {
		t.Fatalf("Deliver during emergency stop = %v, want emergency_stop", err)
	}
	stop, err := twin.NewCommand("robot-1", "gripper", "av_ada", "stop-1", twin.CommandRequest{Op: twin.OpStop})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.disp.Deliver(ctx, b.disp.Grant(stop, "sess-1", nil)); err != nil {
		t.Fatalf("stop during emergency stop = %v, want done", err)
	}
	g.EmergencyStop(ctx, false)
	if _, err := b.disp.Deliver(ctx, b.disp.Grant(b.command("robot-1", "gripper", 50, "after"), "sess-1", nil)); err != nil {
		t.Fatalf("Deliver after release = %v, want done", err)
	}
}

func TestKeyRotation(t *testing.T) {
	b := newBench(t, benchOptions{})
	g := b.gateways["press-1"]
	next, _ := twin.GenerateSigner()
	stranger, _ := twin.GenerateSigner()
	if err := g.HandleRotation(stranger.SignRotation(next.Address(), time.Now()).Encode()); err == nil {
		t.Fatal("rotation signed by an untrusted key was accepted")
	}
	forged := b.realm.SignRotation(next.Address(), time.Now())
	forged.Rotation.Next = stranger.Address()
	if err := g.HandleRotation(forged.Encode()); err == nil {
		t.Fatal("rotation whose next key was changed after signing was accepted")
	}
	if err := g.HandleRotation(b.realm.SignRotation(next.Address(), time.Now()).Encode()); err != nil {
		t.Fatalf("rotation signed by the trusted key: %v", err)
	}
	keys := g.TrustedKeys()
	if len(keys) != 2 {
		t.Fatalf("TrustedKeys() = %v, want the old key (in its grace period) and the new one", keys)
	}
	b.clock.Advance(twin.MaxGrantLifetime + time.Second)
	if keys := g.TrustedKeys(); len(keys) != 1 || keys[0] != next.Address() {
		t.Fatalf("TrustedKeys() after the grace period = %v, want only %s", keys, next.Address())
	}
}

func TestTelemetryReachesTheRegistry(t *testing.T) {
	b := newBench(t, benchOptions{})
	sub, err := twin.FollowTelemetry(b.emb.Conn(), prefix, b.reg, func(id string) (common.Address, bool) { a, ok := b.keys[id]; return a, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if _, err := b.disp.Deliver(context.Background(), b.disp.Grant(b.command("robot-1", "gripper", 60, "tele"), "sess-1", nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		s, ok := b.reg.State("robot-1", "gripper")
		return ok && s.Target == 60
	}, "the registry to show the gripper's new target")
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
