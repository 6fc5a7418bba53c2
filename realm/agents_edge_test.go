package realm

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/delegations"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// Agents and their clients (realmtest).
type (
	agentClient = realmtest.Agent
	agentAnswer = realmtest.AgentAnswer
)

var (
	newAgentKey           = realmtest.NewAgentKey
	issueDelegation       = realmtest.IssueDelegation
	issueDelegationWithin = realmtest.IssueDelegationWithin
	newAgent              = realmtest.NewAgent
	newAgentClient        = realmtest.NewAgentClient
)

func wantAgentRefusal(t *testing.T, what string, a agentAnswer, status int, kind, reason string) {
	t.Helper()
	if a.Status != status || a.Problem.Type != edge.ProblemBase+kind || !strings.Contains(a.Problem.Detail, reason) {
		t.Fatalf("%s = %d %s %q, want %d %s with %q", what, a.Status, a.Problem.Type, a.Problem.Detail, status, kind, reason)
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(a.Header.Get("WWW-Authenticate"), "DPoP ") {
		t.Fatalf("%s: WWW-Authenticate %q, want the DPoP challenge", what, a.Header.Get("WWW-Authenticate"))
	}
}

// TestAgentsAuthenticateAtTheEdge runs an agent against a real realm over
// HTTP: it is asked for a nonce, authenticated by its proof, decided by
// its delegation and the scene's Cedar policies with its whole chain in
// the audit; a stolen token, a replayed proof, an expired or revoked
// delegation are refused with their problem types; a person's routes
// refuse it.
func TestAgentsAuthenticateAtTheEdge(t *testing.T) {
	r := startLocalRealm(t)
	c := newClient(t, r)
	owner := c.Register(webauthntest.New(), "olga")
	ownerID, _ := owner.Avatar["id"].(string)
	ag, chain := newAgent(t, r, ownerID, []string{agents.ActionJoinScene}, agents.Resource{Kind: agents.KindScene, ID: "foundry"})
	key := ag.Key

	// The first request has no nonce: RFC 9449 section 8.
	first := ag.Send("GET", "/v1/agents/me", ag.ProofBy(key, "GET", "/v1/agents/me"))
	wantAgentRefusal(t, "a proof without a nonce", first, 401, edge.TypeDPoPNonce, "nonce")
	if first.Header.Get("DPoP-Nonce") == "" || !strings.Contains(first.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
		t.Fatalf("nonce challenge: DPoP-Nonce %q, WWW-Authenticate %q", first.Header.Get("DPoP-Nonce"), first.Header.Get("WWW-Authenticate"))
	}

	var me delegations.AgentView
	if a := ag.Do("GET", "/v1/agents/me", &me); a.Status != 200 {
		t.Fatalf("GET /v1/agents/me = %d %+v", a.Status, a.Problem)
	}
	if me.ID != chain.AgentID() || me.Owner != ownerID || me.Chain != chain.Path() || !strings.HasPrefix(me.Chain, ownerID+" > "+chain.AgentID()) {
		t.Fatalf("agent sees itself as %+v", me)
	}

	// Replaying the very proof that was just accepted.
	wantAgentRefusal(t, "a replayed proof", ag.Send("GET", "/v1/agents/me", ag.LastProof), 401, edge.TypeInvalidDPoPProof, "proof-replayed")

	// A thief with the token and its own key.
	thief := newAgentKey(t)
	wantAgentRefusal(t, "a stolen token", ag.Send("GET", "/v1/agents/me", ag.ProofBy(thief, "GET", "/v1/agents/me")), 401, edge.TypeInvalidDPoPProof, "proof-not-bound")

	// A proof made for another route does not open this one.
	wantAgentRefusal(t, "a proof for another URL", ag.Send("GET", "/v1/agents/me", ag.ProofBy(key, "GET", "/v1/scenes/foundry/access")), 401, edge.TypeInvalidDPoPProof, "proof-not-bound")

	// Routes only a person may call.
	for _, route := range [][2]string{{"GET", "/v1/avatars/me"}, {"GET", "/v1/sessions"}, {"POST", "/v1/sessions/logout-all"}, {"POST", "/v1/webauthn/stepup/begin"}} {
		wantAgentRefusal(t, route[0]+" "+route[1]+" by an agent", ag.Do(route[0], route[1], nil), 403, edge.TypePeopleOnly, "only a person")
	}

	// The scene's access: joining is granted and Cedar allows it; zones
	// are not in the delegation, so they are refused with that reason.
	var access struct {
		Agent     string        `json:"agent"`
		Chain     string        `json:"chain"`
		Decisions []policy.View `json:"decisions"`
	}
	if a := ag.Do("GET", "/v1/scenes/foundry/access", &access); a.Status != 200 {
		t.Fatalf("agent's scene access = %d %+v", a.Status, a.Problem)
	}
	ans := accessAnswer{Decisions: access.Decisions}
	if d, ok := ans.find(`Scene::"foundry"`); !ok || !d.Allow {
		t.Fatalf("agent joining foundry: %+v", d)
	}
	if d, ok := ans.find(`Zone::"lobby"`); !ok || d.Allow || !strings.Contains(d.Reason, "out-of-scope") {
		t.Fatalf("agent entering a zone its delegation lacks: %+v, want out-of-scope", d)
	}
	// The audit names the whole chain, with the agent as the actor.
	eventually(t, "the agent's decisions in the audit", func() bool {
		for _, ev := range r.view.Events(audit.Query{Actor: chain.AgentID(), Limit: 100}) {
			if ev.Action == "JoinScene" && ev.Outcome == audit.Allow && ev.Signals["chain"] == chain.Path() && ev.Signals["owner"] == ownerID {
				return true
			}
		}
		return false
	})

	// An expired delegation.
	old := issueDelegation(t, r, ownerID, key, []string{agents.ActionJoinScene},
		[]agents.Resource{{Kind: agents.KindScene, ID: "foundry"}}, time.Now().Add(-3*time.Hour), time.Hour)
	expired := *ag
	expired.Token = old.Token()
	wantAgentRefusal(t, "an expired delegation", expired.Do("GET", "/v1/agents/me", nil), 401, edge.TypeDelegationExpired, "expired")

	// Revoked: refused at the next request.
	if err := r.agents.Revocations().Revoke(context.Background(), chain.Leaf().ID, ownerID, "test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the revocation refuses the agent", func() bool {
		return ag.Do("GET", "/v1/agents/me", nil).Problem.Type == edge.ProblemBase+edge.TypeDelegationRevoked
	})

	// A person's session cannot call an agent's route.
	if code, p := c.With(owner.Token).Call("GET", "/v1/agents/me", nil, nil); code != 401 {
		t.Fatalf("GET /v1/agents/me with a session = %d %+v", code, p)
	}
}
