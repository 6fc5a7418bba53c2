package realm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
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
)

// agentClient is an agent as a third party would write one: it holds its
// Ed25519 key and its delegation token, signs an RFC 9449 proof for every
// request and retries once with the nonce a use_dpop_nonce refusal gives.
type agentClient struct {
	t     testing.TB
	base  string
	key   ed25519.PrivateKey
	token string
	nonce string
	hc    *http.Client
	// lastProof is the proof of the last request sent, to replay it.
	lastProof string
}

type agentAnswer struct {
	status  int
	header  http.Header
	problem edge.Problem
	body    []byte
}

func newAgentKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issueDelegation makes a root delegation for owner as the realm does once
// the owner's step-up confirmed it: signed by the node's active ring key.
func issueDelegation(t testing.TB, r *Realm, owner string, agent ed25519.PrivateKey, actions []string, resources []agents.Resource, iat time.Time, life time.Duration) *agents.Chain {
	t.Helper()
	return issueDelegationWithin(t, r, owner, agent, actions, resources, agents.Limits{MaxRisk: agents.RiskLow}, iat, life)
}

// issueDelegationWithin is issueDelegation with the delegation's limits.
func issueDelegationWithin(t testing.TB, r *Realm, owner string, agent ed25519.PrivateKey, actions []string, resources []agents.Resource, limits agents.Limits, iat time.Time, life time.Duration) *agents.Chain {
	t.Helper()
	signer := agents.KeySigner{Key: r.keys.Active}
	d, err := agents.PrepareRoot(agents.Grant{
		Owner: owner, Agent: agents.EncodeAgentKey(agent.Public().(ed25519.PublicKey)),
		Actions: actions, Resources: resources,
		Limits:   limits,
		IssuedAt: iat, ExpiresAt: iat.Add(life),
	}, signer.Address())
	if err != nil {
		t.Fatalf("PrepareRoot: %v", err)
	}
	c, err := d.Sign(signer)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return c
}

// newAgent is a fresh agent of owner with a delegation issued a minute
// ago for an hour, and its HTTP client.
func newAgent(t testing.TB, r *Realm, owner string, actions []string, resources ...agents.Resource) (*agentClient, *agents.Chain) {
	t.Helper()
	key := newAgentKey(t)
	chain := issueDelegation(t, r, owner, key, actions, resources, time.Now().Add(-time.Minute), time.Hour)
	return &agentClient{t: t, base: r.URL(), key: key, token: chain.Token(), hc: &http.Client{Timeout: 10 * time.Second}}, chain
}

func (c *agentClient) send(method, path, proof string) agentAnswer {
	return c.sendBody(method, path, proof, nil, nil)
}

// sendBody is send with a JSON body and more headers.
func (c *agentClient) sendBody(method, path, proof string, body []byte, header http.Header) agentAnswer {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "DPoP "+c.token)
	req.Header.Set("DPoP", proof)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := agentAnswer{status: resp.StatusCode, header: resp.Header, body: raw}
	if resp.StatusCode >= 300 {
		_ = json.Unmarshal(raw, &out.problem)
	}
	if n := resp.Header.Get("DPoP-Nonce"); n != "" {
		c.nonce = n
	}
	return out
}

// proofBy signs a proof for method and path with key (the agent's, or a
// thief's).
func (c *agentClient) proofBy(key ed25519.PrivateKey, method, path string) string {
	c.t.Helper()
	p, err := agents.NewProof(key, method, c.base+path, c.token, c.nonce, time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

// do sends a request with a fresh proof, and again with the node's nonce
// when the first is refused for want of one.
func (c *agentClient) do(method, path string, out any) agentAnswer {
	c.t.Helper()
	return c.doBody(method, path, nil, nil, out)
}

// doBody is do with a JSON body and more headers.
func (c *agentClient) doBody(method, path string, body []byte, header http.Header, out any) agentAnswer {
	c.t.Helper()
	for range 2 {
		c.lastProof = c.proofBy(c.key, method, path)
		a := c.sendBody(method, path, c.lastProof, body, header)
		if a.status == http.StatusUnauthorized && a.problem.Type == edge.ProblemBase+edge.TypeDPoPNonce {
			continue
		}
		if a.status < 300 && out != nil {
			if err := json.Unmarshal(a.body, out); err != nil {
				c.t.Fatalf("%s %s: %v", method, path, err)
			}
		}
		return a
	}
	c.t.Fatalf("%s %s: still asked for a nonce after sending one", method, path)
	return agentAnswer{}
}

func wantAgentRefusal(t *testing.T, what string, a agentAnswer, status int, kind, reason string) {
	t.Helper()
	if a.status != status || a.problem.Type != edge.ProblemBase+kind || !strings.Contains(a.problem.Detail, reason) {
		t.Fatalf("%s = %d %s %q, want %d %s with %q", what, a.status, a.problem.Type, a.problem.Detail, status, kind, reason)
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "DPoP ") {
		t.Fatalf("%s: WWW-Authenticate %q, want the DPoP challenge", what, a.header.Get("WWW-Authenticate"))
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
	key := ag.key

	// The first request has no nonce: RFC 9449 section 8.
	first := ag.send("GET", "/v1/agents/me", ag.proofBy(key, "GET", "/v1/agents/me"))
	wantAgentRefusal(t, "a proof without a nonce", first, 401, edge.TypeDPoPNonce, "nonce")
	if first.header.Get("DPoP-Nonce") == "" || !strings.Contains(first.header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
		t.Fatalf("nonce challenge: DPoP-Nonce %q, WWW-Authenticate %q", first.header.Get("DPoP-Nonce"), first.header.Get("WWW-Authenticate"))
	}

	var me delegations.AgentView
	if a := ag.do("GET", "/v1/agents/me", &me); a.status != 200 {
		t.Fatalf("GET /v1/agents/me = %d %+v", a.status, a.problem)
	}
	if me.ID != chain.AgentID() || me.Owner != ownerID || me.Chain != chain.Path() || !strings.HasPrefix(me.Chain, ownerID+" > "+chain.AgentID()) {
		t.Fatalf("agent sees itself as %+v", me)
	}

	// Replaying the very proof that was just accepted.
	wantAgentRefusal(t, "a replayed proof", ag.send("GET", "/v1/agents/me", ag.lastProof), 401, edge.TypeInvalidDPoPProof, "proof-replayed")

	// A thief with the token and its own key.
	thief := newAgentKey(t)
	wantAgentRefusal(t, "a stolen token", ag.send("GET", "/v1/agents/me", ag.proofBy(thief, "GET", "/v1/agents/me")), 401, edge.TypeInvalidDPoPProof, "proof-not-bound")

	// A proof made for another route does not open this one.
	wantAgentRefusal(t, "a proof for another URL", ag.send("GET", "/v1/agents/me", ag.proofBy(key, "GET", "/v1/scenes/foundry/access")), 401, edge.TypeInvalidDPoPProof, "proof-not-bound")

	// Routes only a person may call.
	for _, route := range [][2]string{{"GET", "/v1/avatars/me"}, {"GET", "/v1/sessions"}, {"POST", "/v1/sessions/logout-all"}, {"POST", "/v1/webauthn/stepup/begin"}} {
		wantAgentRefusal(t, route[0]+" "+route[1]+" by an agent", ag.do(route[0], route[1], nil), 403, edge.TypePeopleOnly, "only a person")
	}

	// The scene's access: joining is granted and Cedar allows it; zones
	// are not in the delegation, so they are refused with that reason.
	var access struct {
		Agent     string        `json:"agent"`
		Chain     string        `json:"chain"`
		Decisions []policy.View `json:"decisions"`
	}
	if a := ag.do("GET", "/v1/scenes/foundry/access", &access); a.status != 200 {
		t.Fatalf("agent's scene access = %d %+v", a.status, a.problem)
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
	expired.token = old.Token()
	wantAgentRefusal(t, "an expired delegation", expired.do("GET", "/v1/agents/me", nil), 401, edge.TypeDelegationExpired, "expired")

	// Revoked: refused at the next request.
	if err := r.agents.Revocations().Revoke(context.Background(), chain.Leaf().ID, ownerID, "test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the revocation refuses the agent", func() bool {
		return ag.do("GET", "/v1/agents/me", nil).problem.Type == edge.ProblemBase+edge.TypeDelegationRevoked
	})

	// A person's session cannot call an agent's route.
	if code, p := c.With(owner.Token).Call("GET", "/v1/agents/me", nil, nil); code != 401 {
		t.Fatalf("GET /v1/agents/me with a session = %d %+v", code, p)
	}
}
