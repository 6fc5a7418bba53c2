package realm

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/delegations"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/trust"
)

type delegationDigest struct {
	Grant        json.RawMessage `json:"grant"`
	Agent        string          `json:"agent"`
	ActionDigest string          `json:"action_digest"`
}

type issuedDelegation struct {
	Token      string           `json:"token"`
	Delegation delegations.View `json:"delegation"`
}

// TestDelegationsAPI is the owner's side over HTTP against a real realm:
// a delegation is issued only after a user-verified step-up bound to its
// digest, its token works for the agent it names, the owner lists and
// revokes it (the agent is refused at its next request), reinstates a
// suspended agent with a step-up, and an agent can call none of it.
func TestDelegationsAPI(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	auth := webauthntest.New()
	owner := c.Register(auth, "oskar")
	ownerID, _ := owner.Avatar["id"].(string)
	oc := c.With(owner.Token)
	key := newAgentKey(t)
	grant := map[string]any{
		"agent_key": agents.EncodeAgentKey(key.Public().(ed25519.PublicKey)),
		"actions":   []string{"JoinScene"},
		"resources": []map[string]string{{"type": "Scene", "id": "foundry"}},
		"limits":    map[string]any{"max_risk": "low"},
	}

	// Bad grants are refused with their reason and change nothing.
	for what, change := range map[string]func(map[string]any){
		"a lifetime over 24 h":    func(g map[string]any) { g["expires_in"] = 86401 },
		"a critical risk":         func(g map[string]any) { g["limits"] = map[string]any{"max_risk": "critical"} },
		"ApproveCommand":          func(g map[string]any) { g["actions"] = []string{"ApproveCommand"} },
		"a key that is not a key": func(g map[string]any) { g["agent_key"] = "AAAA" },
	} {
		bad := map[string]any{"expires_in": 3600}
		for k, v := range grant {
			bad[k] = v
		}
		change(bad)
		if code, p := oc.Call("POST", "/v1/agents/delegations/digest", bad, nil); code != 400 || p.Detail == "" {
			t.Errorf("digest of a grant with %s = %d %+v, want 400 with a reason", what, code, p)
		}
	}

	grant["expires_in"] = 3600
	var dg delegationDigest
	oc.Must("POST", "/v1/agents/delegations/digest", grant, &dg)
	if dg.Agent != agents.AgentID(key.Public().(ed25519.PublicKey)) || len(dg.ActionDigest) != 66 {
		t.Fatalf("digest answer %+v", dg)
	}
	issue := map[string]any{"grant": dg.Grant}
	// Without the step-up: refused, nothing issued.
	if code, p := oc.Call("POST", "/v1/agents/delegations", issue, nil); code != 403 {
		t.Fatalf("issue without a step-up = %d %+v, want 403", code, p)
	}
	// A grant changed after the digest no longer matches the step-up.
	if code, _ := oc.StepUp(auth, dg.ActionDigest); code != 200 {
		t.Fatalf("step-up = %d", code)
	}
	var widened map[string]any
	_ = json.Unmarshal(dg.Grant, &widened)
	widened["actions"] = []string{"JoinScene", "ViewTwin"}
	if code, p := oc.Call("POST", "/v1/agents/delegations", map[string]any{"grant": widened}, nil); code != 403 {
		t.Fatalf("issue of a grant changed after its step-up = %d %+v, want 403", code, p)
	}
	var issued issuedDelegation
	if code, p := oc.Call("POST", "/v1/agents/delegations", issue, &issued); code != 201 {
		t.Fatalf("issue after the step-up = %d %+v", code, p)
	}
	if !strings.HasPrefix(issued.Token, "zrd1~") || issued.Delegation.State != "active" || issued.Delegation.AgentID != dg.Agent {
		t.Fatalf("issued %+v", issued)
	}
	// The step-up was spent.
	if code, _ := oc.Call("POST", "/v1/agents/delegations", issue, nil); code != 403 {
		t.Fatalf("a second issue with the same step-up = %d, want 403", code)
	}

	ag := &agentClient{T: t, Base: r.URL(), Key: key, Token: issued.Token, HTTP: &http.Client{Timeout: 10 * time.Second}}
	var me delegations.AgentView
	if a := ag.Do("GET", "/v1/agents/me", &me); a.Status != 200 || me.Owner != ownerID || me.Delegation != issued.Delegation.ID {
		t.Fatalf("the issued token: %d %+v %+v", a.Status, a.Problem, me)
	}
	// An agent can neither list, issue nor revoke delegations.
	for _, route := range [][2]string{{"GET", "/v1/agents/delegations"}, {"POST", "/v1/agents/delegations/digest"}, {"DELETE", "/v1/agents/delegations/" + issued.Delegation.ID}, {"POST", "/v1/agents/" + me.ID + "/reinstate"}} {
		wantAgentRefusal(t, route[0]+" "+route[1]+" by an agent", ag.Do(route[0], route[1], nil), 403, edge.TypePeopleOnly, "only a person")
	}

	var list struct {
		Delegations []delegations.View `json:"delegations"`
	}
	oc.Must("GET", "/v1/agents/delegations", nil, &list)
	if len(list.Delegations) != 1 || list.Delegations[0].ID != issued.Delegation.ID {
		t.Fatalf("the owner's delegations: %+v", list)
	}
	// Another avatar sees none of them and cannot revoke them.
	other := c.With(c.Register(webauthntest.New(), "petra").Token)
	other.Must("GET", "/v1/agents/delegations", nil, &list)
	if len(list.Delegations) != 0 {
		t.Fatalf("another avatar lists %+v", list)
	}
	if code, _ := other.Call("DELETE", "/v1/agents/delegations/"+issued.Delegation.ID, nil, nil); code != 404 {
		t.Fatalf("another avatar revoking = %d, want 404", code)
	}

	// A suspended agent is reinstated by its owner's step-up.
	if err := r.agents.Revocations().Suspend(context.Background(), me.ID, "test", "test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the suspension refuses the agent", func() bool {
		return ag.Do("GET", "/v1/agents/me", nil).Problem.Type == edge.ProblemBase+edge.TypeAgentSuspended
	})
	if code, p := oc.Call("POST", "/v1/agents/"+me.ID+"/reinstate", nil, nil); code != 403 || !strings.Contains(p.Detail, issued.Delegation.ReinstateDigest) {
		t.Fatalf("reinstate without a step-up = %d %+v, want 403 naming the digest", code, p)
	}
	if code, _ := oc.StepUp(auth, issued.Delegation.ReinstateDigest); code != 200 {
		t.Fatalf("step-up = %d", code)
	}
	if code, p := oc.Call("POST", "/v1/agents/"+me.ID+"/reinstate", nil, nil); code != 204 {
		t.Fatalf("reinstate = %d %+v", code, p)
	}
	eventually(t, "the reinstated agent is served", func() bool { return ag.Do("GET", "/v1/agents/me", nil).Status == 200 })

	// Revoked by its owner: refused at the agent's next request.
	// The answer says the revocation took effect on this node (the only
	// one) and is stored: the agent's next request is refused at once.
	var revoked struct {
		NodesTold int  `json:"nodes_told"`
		NodesLive int  `json:"nodes_live"`
		Stored    bool `json:"stored"`
	}
	if code, p := oc.Call("DELETE", "/v1/agents/delegations/"+issued.Delegation.ID, nil, &revoked); code != 200 || revoked.NodesTold != 1 || revoked.NodesLive != 1 || !revoked.Stored {
		t.Fatalf("revoke = %d %+v %+v; want 200, told and stored", code, p, revoked)
	}
	if got := ag.Do("GET", "/v1/agents/me", nil).Problem.Type; got != edge.ProblemBase+edge.TypeDelegationRevoked {
		t.Fatalf("the agent's request right after the revocation answered: %q", got)
	}
	oc.Must("GET", "/v1/agents/delegations", nil, &list)
	if len(list.Delegations) != 1 || list.Delegations[0].State != "revoked" {
		t.Fatalf("after revoking: %+v", list)
	}
	eventually(t, "issue, reinstate and revoke in the audit", func() bool {
		seen := map[string]bool{}
		for _, ev := range r.view.Events(audit.Query{Actor: ownerID, Outcome: audit.Allow, Limit: 100}) {
			seen[ev.Action] = true
		}
		return seen[delegations.ActionIssue] && seen[delegations.ActionReinstate] && seen[delegations.ActionRevoke]
	})
}

// TestOwnerSignOutStopsAgents: an owner's "sign out everywhere" revokes
// every delegation it issued, on every node; so does the owner's trust
// becoming suspended.
func TestOwnerSignOutStopsAgents(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	owner := c.Register(webauthntest.New(), "otto")
	ownerID, _ := owner.Avatar["id"].(string)
	ag, _ := newAgent(t, r, ownerID, []string{agents.ActionJoinScene}, agents.Resource{Kind: agents.KindScene, ID: "foundry"})
	if a := ag.Do("GET", "/v1/agents/me", nil); a.Status != 200 {
		t.Fatalf("before: %d %+v", a.Status, a.Problem)
	}
	c.With(owner.Token).Must("POST", "/v1/sessions/logout-all", nil, nil)
	eventually(t, "signing out everywhere refuses the owner's agents", func() bool {
		a := ag.Do("GET", "/v1/agents/me", nil)
		return a.Problem.Type == edge.ProblemBase+edge.TypeDelegationRevoked && strings.Contains(a.Problem.Detail, "owner")
	})

	// The owner's trust suspended: its agents stop with it.
	other := c.Register(webauthntest.New(), "ute")
	otherID, _ := other.Avatar["id"].(string)
	key2 := newAgentKey(t)
	// Issued a second ago, so the revocation (at the second) covers it.
	chain2 := issueDelegation(t, r, otherID, key2, []string{agents.ActionJoinScene},
		[]agents.Resource{{Kind: agents.KindScene, ID: "foundry"}}, time.Now().Add(-time.Second), time.Hour)
	ag2 := newAgentClient(t, r.URL(), key2, chain2)
	if a := ag2.Do("GET", "/v1/agents/me", nil); a.Status != 200 {
		t.Fatalf("before: %d %+v", a.Status, a.Problem)
	}
	// A cloned passkey suspends the owner's session; the trust hub tells
	// the realm, which stops the owner's agents.
	sess, err := r.sessions.AuthenticateCached(context.Background(), other.Token)
	if err != nil {
		t.Fatal(err)
	}
	if r.trust.ObserveClone(context.Background(), sess, "Y2xvbmVk"); r.trust.Assess(context.Background(), sess).State != trust.Suspended {
		t.Fatal("a cloned passkey did not suspend the session")
	}
	eventually(t, "the owner's suspension refuses its agents", func() bool {
		return ag2.Do("GET", "/v1/agents/me", nil).Problem.Type == edge.ProblemBase+edge.TypeDelegationRevoked
	})
}
