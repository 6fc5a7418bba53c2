package realm

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/twins"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

// operatorsAgent is an agent of an operator, delegated to command the
// conveyor's belt, the whole press and the robot's gripper, up to high
// risk.
func operatorsAgent(t *testing.T, r *Realm, name string) (operator, *agentClient, *agents.Chain) {
	t.Helper()
	owner := newOperator(t, r, name, "operator")
	key := newAgentKey(t)
	chain := issueDelegationWithin(t, r, owner.ID, key,
		[]string{agents.ActionCommandActuator, agents.ActionViewTwin},
		[]agents.Resource{{Kind: agents.KindActuator, ID: "conveyor-1/belt-speed"}, {Kind: agents.KindTwin, ID: "press-1"}, {Kind: agents.KindActuator, ID: "robot-1/gripper"}},
		agents.Limits{CommandsPerMinute: 30, MaxRisk: agents.RiskHigh}, time.Now().Add(-time.Minute), time.Hour)
	return owner, newAgentClient(t, r.URL(), key, chain), chain
}

// TestAgentTwinCommands: an agent commands an actuator over HTTP with its
// DPoP proof. Its delegation decides first, then the scene's Cedar
// policies with the agent as the principal; the grant carries its owner
// and chain; the audit names the chain. Out of scope, a high-risk command
// (its owner must approve) and a critical one (never an agent's) are
// refused with their reasons, and nothing moves.
func TestAgentTwinCommands(t *testing.T) {
	r := startLocalRealm(t)
	waitTwinsLive(t, r)
	owner, ag, chain := operatorsAgent(t, r, "olga")

	a, answer := ag.Command(beltPath, "agent-belt-1", 1.2)
	if a.Status != http.StatusOK || answer.Status != string(twin.ResultDone) {
		t.Fatalf("agent's belt command = %d %+v %+v, want 200 done", a.Status, a.Problem, answer)
	}
	grant := answer.Grant.TypedData.Typed()
	if grant.Message["operator"] != chain.AgentID() || grant.Message["owner"] != owner.ID || grant.Message["session"] != "" ||
		fmt.Sprint(grant.Message["delegations"]) != fmt.Sprint(chain.IDs()) {
		t.Fatalf("the agent's grant = %v, want operator %s, owner %s and chain %v", grant.Message, chain.AgentID(), owner.ID, chain.IDs())
	}
	// A retry under the same key is answered from the first.
	if again, second := ag.Command(beltPath, "agent-belt-1", 1.2); again.Status != 200 || second.Ack.Signature != answer.Ack.Signature {
		t.Fatalf("retried command = %d %+v, want the first answer", again.Status, second)
	}

	// The agent may read the twins its delegation names.
	var view twins.TwinView
	if a := ag.Do("GET", "/v1/twins/conveyor-1", &view); a.Status != 200 || len(view.Actuators) != 1 {
		t.Fatalf("agent reads conveyor-1 = %d %+v %+v", a.Status, a.Problem, view)
	}
	if a := ag.Do("GET", "/v1/twins/feed", nil); a.Status != 403 || a.Problem.Type != edge.ProblemBase+edge.TypePeopleOnly {
		t.Fatalf("agent opens the console feed = %d %+v, want people-only", a.Status, a.Problem)
	}

	cases := []struct{ name, path, key, reason string }{
		{"an actuator its delegation lacks", "/v1/twins/robot-1/actuators/base-joint/commands", "agent-base", "out-of-scope"},
		{"a critical command, never an agent's", pressurePath, "agent-pressure", "critical"},
	}
	for _, tc := range cases {
		a, _ := ag.Command(tc.path, tc.key, 10)
		if a.Status != http.StatusForbidden || a.Problem.Type != edge.ProblemBase+edge.TypeAgentForbidden || !strings.Contains(a.Problem.Detail, tc.reason) {
			t.Fatalf("%s = %d %s %q, want 403 agent-forbidden with %q", tc.name, a.Status, a.Problem.Type, a.Problem.Detail, tc.reason)
		}
	}

	// A high-risk command waits in the owner's approval queue; it runs
	// when the owner approves it with a step-up bound to it, through the
	// same decision (the approval is its step-up) and the same grant.
	a, waiting := ag.Command(ramPath, "agent-ram", 10)
	if a.Status != http.StatusAccepted || waiting.Status != command.StatusPendingOwner || waiting.OwnerApproval == nil ||
		a.Header.Get("Location") != "/v1/agents/approvals/"+waiting.OwnerApproval.ID {
		t.Fatalf("agent's high-risk command = %d %+v %+v, want 202 waiting for its owner", a.Status, a.Problem, waiting)
	}
	pending := waiting.OwnerApproval
	if code, p := owner.Call("POST", "/v1/agents/approvals/"+pending.ID+"/approve", nil, nil); code != http.StatusForbidden || !strings.Contains(p.Detail, pending.Digest) {
		t.Fatalf("approving without a step-up = %d %+v", code, p)
	}
	if code, p := owner.StepUp(owner.Auth, pending.Digest); code != 200 {
		t.Fatalf("owner's step-up = %d %+v", code, p)
	}
	var approved struct {
		State  string         `json:"state"`
		Result command.Answer `json:"result"`
	}
	owner.Must("POST", "/v1/agents/approvals/"+pending.ID+"/approve", nil, &approved)
	if approved.State != "done" || approved.Result.Status != string(twin.ResultDone) || approved.Result.Command.Operator != chain.AgentID() {
		t.Fatalf("the approved command = %+v", approved)
	}
	if approved.Result.Ack == nil || approved.Result.Ack.Target != 10 {
		t.Fatalf("the gateway's answer to the approved command = %+v, want target 10", approved.Result.Ack)
	}

	// The audit: the commands carried out, by the agent, with the chain
	// from its owner; each refusal with its reason.
	eventually(t, "the agent's commands in the audit", func() bool {
		var done, refused int
		for _, ev := range r.view.Events(audit.Query{Actor: chain.AgentID(), Limit: 100}) {
			if ev.Action != "CommandActuator" || ev.Signals["chain"] != chain.Path() || ev.Signals["owner"] != owner.ID {
				continue
			}
			switch {
			case ev.Outcome == audit.Allow && ev.Signals["result"] == string(twin.ResultDone):
				done++
			case ev.Outcome == audit.Deny:
				refused++
			}
		}
		// The belt and the approved ram; the refusals and the ram's wait.
		return done == 2 && refused == len(cases)+1
	})
	// The pressure never moved.
	if st, ok := r.twins.Registry().State("press-1", "pressure"); ok && st.Target != 0 {
		t.Fatalf("the pressure moved to %v", st.Target)
	}
}

// TestAgentGrantRevokedReachesGateways: a grant the realm signed for an
// agent's command is refused by the gateway once the agent's root
// delegation is revoked, on every simulated gateway; the agent's next
// command is refused by the realm.
func TestAgentGrantRevokedReachesGateways(t *testing.T) {
	r := startLocalRealm(t)
	waitTwinsLive(t, r)
	owner, ag, chain := operatorsAgent(t, r, "olga")
	if a, _ := ag.Command(beltPath, "before", 1); a.Status != 200 {
		t.Fatalf("agent's command before revocation = %d %+v", a.Status, a.Problem)
	}
	c, err := twin.NewCommand("conveyor-1", "belt-speed", chain.AgentID(), "signed-before", twin.CommandRequest{Op: twin.OpSet, Value: ptr(0.5)})
	if err != nil {
		t.Fatal(err)
	}
	pending := r.twins.Dispatcher().AgentGrantFor(c, c.Hash(), owner.ID, chain.IDs())

	if err := r.agents.Revocations().Revoke(context.Background(), chain.Root().ID, owner.ID, "test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every gateway to hear of the revoked delegation", func() bool {
		for _, g := range r.twins.Gateways().Simulated() {
			if !g.AgentRevoked(chain.Root().ID) {
				return false
			}
		}
		return true
	})
	if _, err := r.twins.Dispatcher().Deliver(context.Background(), pending); twin.ReasonOf(err) != twin.ReasonDelegationRevoked {
		t.Fatalf("a grant signed before the revocation = %v, want delegation_revoked", err)
	}
	a, _ := ag.Command(beltPath, "after", 1)
	wantAgentRefusal(t, "the agent's command after revocation", a, http.StatusUnauthorized, edge.TypeDelegationRevoked, "revoked")
}

func ptr[T any](v T) *T { return &v }

// TestMCPTwinTools runs the Go MCP SDK's client as an operator's agent:
// twin_state reads a twin its delegation names; command_actuator carries a
// command out through the twin route's own path (the same answer, the
// same Idempotency-Key, the same audit); a command outside the delegation
// and a high-risk one are refused as tool errors with their reasons;
// malformed arguments never reach the realm.
func TestMCPTwinTools(t *testing.T) {
	r := startLocalRealm(t)
	waitTwinsLive(t, r)
	_, ag, chain := operatorsAgent(t, r, "mcp-olga")
	cs, call := mcpAgent(t, r, ag, chain.Token())
	ctx := context.Background()
	text := func(res *mcp.CallToolResult) string { return res.Content[0].(*mcp.TextContent).Text }

	res := call("twin_state", map[string]any{"twin": "conveyor-1"})
	var view twins.TwinView
	remarshal(t, res.StructuredContent, &view)
	if res.IsError || view.ID != "conveyor-1" || len(view.Actuators) != 1 || view.Gateway == "" {
		t.Fatalf("twin_state = %+v %s", view, text(res))
	}

	res = call("command_actuator", map[string]any{"twin": "conveyor-1", "actuator": "belt-speed", "key": "mcp-1", "op": "set", "value": 0.8, "reason": "mcp test"})
	var answer command.Answer
	remarshal(t, res.StructuredContent, &answer)
	if res.IsError || answer.Status != command.StatusDone || answer.Command.Operator != chain.AgentID() {
		t.Fatalf("command_actuator = %+v %s", answer, text(res))
	}
	// The route's own Idempotency-Key: the HTTP route answers the same key
	// with the tool's first answer.
	if a, again := ag.Command(beltPath, "mcp-1", 0.8); a.Status != 200 || again.Ack.Signature != answer.Ack.Signature {
		t.Fatalf("the route with the tool's key = %d %+v, want the tool's answer", a.Status, again)
	}

	for _, tc := range []struct {
		args   map[string]any
		reason string
	}{
		{map[string]any{"twin": "robot-1", "actuator": "base-joint", "key": "mcp-2", "op": "set", "value": 1.0}, "out-of-scope"},
		{map[string]any{"twin": "press-1", "actuator": "pressure", "key": "mcp-3", "op": "set", "value": 1.0}, "critical"},
	} {
		if res := call("command_actuator", tc.args); !res.IsError || !strings.Contains(text(res), tc.reason) {
			t.Fatalf("command_actuator %v = %s, want a tool error with %q", tc.args, text(res), tc.reason)
		}
	}
	// A high-risk command waits for the owner, as on the route.
	res = call("command_actuator", map[string]any{"twin": "press-1", "actuator": "ram", "key": "mcp-4", "op": "set", "value": 1.0})
	var waiting command.Answer
	remarshal(t, res.StructuredContent, &waiting)
	if res.IsError || waiting.Status != command.StatusPendingOwner || waiting.OwnerApproval == nil || waiting.OwnerApproval.Digest == "" {
		t.Fatalf("command_actuator on the ram = %+v %s, want it waiting for the owner", waiting, text(res))
	}
	// Arguments the route would refuse are refused before any decision.
	for _, args := range []map[string]any{
		{"twin": "conveyor-1", "actuator": "belt-speed", "key": "", "op": "set", "value": 1.0},
		{"twin": "Conveyor 1", "actuator": "belt-speed", "key": "k", "op": "set", "value": 1.0},
		{"twin": "conveyor-1", "actuator": "belt-speed", "key": "k", "op": "fly"},
	} {
		if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "command_actuator", Arguments: args}); err == nil && !res.IsError {
			t.Fatalf("command_actuator %v accepted", args)
		}
	}
	eventually(t, "the tool's command in the audit with the chain", func() bool {
		for _, ev := range r.view.Events(audit.Query{Actor: chain.AgentID(), Limit: 100}) {
			if ev.Action == "CommandActuator" && ev.Outcome == audit.Allow && ev.Signals["chain"] == chain.Path() {
				return true
			}
		}
		return false
	})
}

// TestAgentTwinCommandAcrossNodes: two realm nodes on a 3-node NATS
// cluster and one enrolled gateway. A delegation issued by node A's key is
// enforced on node B for a twin command (B signs the grant, the gateway
// carries it out); its owner's agents stopped on node A (the cascade of
// agents/cascade, as "sign out everywhere" does), the answer says both
// nodes were told, node B refuses the agent's next command, and the
// gateway refuses a grant B signed before the revocation.
func TestAgentTwinCommandAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	a, b, gw := twoNodesAndAGateway(t)

	owner := newOperator(t, a, "olga", "operator")
	agentKey := newAgentKey(t)
	chain := issueDelegationWithin(t, a, owner.ID, agentKey, []string{agents.ActionCommandActuator},
		[]agents.Resource{{Kind: agents.KindActuator, ID: "conveyor-1/belt-speed"}},
		agents.Limits{CommandsPerMinute: 30, MaxRisk: agents.RiskLow}, time.Now().Add(-time.Minute), time.Hour)
	onB := newAgentClient(t, b.URL(), agentKey, chain)
	// Node B trusts node A's key as a root once it has read A's signers
	// (every 10 s).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, answer := onB.Command(beltPath, fmt.Sprint("across-", time.Now().UnixNano()), 1)
		if resp.Status == http.StatusOK && answer.Status == string(twin.ResultDone) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node B on a delegation node A issued = %d %+v %+v, want done", resp.Status, resp.Problem, answer.Ack)
		}
	}
	c, err := twin.NewCommand("conveyor-1", "belt-speed", chain.AgentID(), "signed-on-b", twin.CommandRequest{Op: twin.OpSet, Value: ptr(0.5)})
	if err != nil {
		t.Fatal(err)
	}
	signedOnB := b.twins.Dispatcher().AgentGrantFor(c, c.Hash(), owner.ID, chain.IDs())

	eventually(t, "node A to count node B live", func() bool { return len(a.otherNodes()) == 1 })
	out, err := a.delegations.StopOwnersAgents(context.Background(), owner.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	if out.NodesTold != 2 || out.NodesLive != 2 {
		t.Fatalf("stopping the owner's agents on node A = %+v; want both nodes told", out)
	}
	// Told means refusing: no wait for node B's change feed.
	if resp, _ := onB.Command(beltPath, fmt.Sprint("after-", time.Now().UnixNano()), 1); resp.Status != http.StatusUnauthorized || resp.Problem.Type != edge.ProblemBase+edge.TypeDelegationRevoked {
		t.Fatalf("node B, right after it was told = %d %+v; want 401 delegation-revoked", resp.Status, resp.Problem)
	}
	eventually(t, "the gateway to hear of the revocation made on node A", func() bool { return gw.AgentRevoked(owner.ID) })
	if _, err := b.twins.Dispatcher().Deliver(context.Background(), signedOnB); twin.ReasonOf(err) != twin.ReasonDelegationRevoked {
		t.Fatalf("a grant node B signed before the revocation = %v, want delegation_revoked", err)
	}
}

// twoNodesAndAGateway starts realm nodes a and b on a 3-node NATS cluster
// and the enrolled gateway of conveyor-1, which both know, hearing their
// revocation feeds.
func twoNodesAndAGateway(t testing.TB) (a, b *Realm, gw *gateway.Gateway) {
	t.Helper()
	servers := natstest.RunCluster(t, 3)
	urls := strings.Split(natstest.ClusterURLs(servers), ",")
	dirA, dirB := t.TempDir(), t.TempDir()
	creds, err := EnrollGateway(dirA, "", "zr", "conveyor-1", "")
	if err != nil {
		t.Fatal(err)
	}
	// Both nodes know the one gateway of the conveyor.
	enrolled, err := os.ReadFile(filepath.Join(dirA, command.GatewaysFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, command.GatewaysFile), enrolled, 0o600); err != nil {
		t.Fatal(err)
	}
	a = startRealm(t, Config{DataDir: dirA, NATS: urls, Node: "realm-a"})
	b = startRealm(t, Config{DataDir: dirB, NATS: urls, Node: "realm-b"})

	key, err := crypto.HexToECDSA(strings.TrimPrefix(creds.Key, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := twin.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	gw, err = gateway.New(gateway.Config{Twin: "conveyor-1", Actuators: creds.Actuators, Conn: natstest.Connect(t, servers[1].ClientURL()),
		RealmKeys: []common.Address{a.twins.GrantKey(), b.twins.GrantKey()}, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	eventually(t, "the gateway to hear a revocation feed", func() bool { age := gw.FeedAge(); return age >= 0 && age < time.Second })
	return a, b, gw
}
