package agents

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/trust"
)

// The Agent principal is converted once per chain and trust, and is never
// served for another trust or another chain: policies that read its trust
// and its chain decide from the assessment they are given.
func TestPrincipalFollowsTheTrust(t *testing.T) {
	set, err := policy.Parse("trust.cedar", []byte(`
@id("trusted-agents")
permit (principal is Agent, action, resource)
when { principal.trust_state == "trusted" && principal.trust_score.greaterThanOrEqual(decimal("0.9")) };

@id("not-through-the-blocked-delegation")
forbid (principal is Agent, action, resource)
when { principal.delegations.contains("dg_0b10cced000000000000000000000000") };
`))
	if err != nil {
		t.Fatal(err)
	}
	key, agent, sub := realmKey(t), agentKey(t), agentKey(t)
	root := issue(t, key, rootGrant(agent))
	derived, err := Derive(root, agent, subGrant(sub))
	if err != nil {
		t.Fatal(err)
	}
	parent := &Agent{ID: root.AgentID(), Chain: root}
	child := &Agent{ID: derived.AgentID(), Chain: derived}
	decide := func(a *Agent, as Assessment) (bool, policy.Entity) {
		t.Helper()
		p := Principal(a, as)
		d, err := set.Decide(context.Background(), policy.Request{
			Principal: p.UID, Action: policy.UID{Type: "Action", ID: ActionJoinScene},
			Resource: policy.UID{Type: "Scene", ID: "foundry"}, Entities: []policy.Entity{p},
		})
		if err != nil {
			t.Fatal(err)
		}
		return d.Allow, p
	}
	trusted := Assessment{State: trust.Trusted, Score: 1}
	steps := []struct {
		as   Assessment
		want bool
	}{
		{trusted, true},
		{trusted, true}, // the same trust: the same conversion
		{Assessment{State: trust.StepUp, Score: 1}, false},
		{trusted, true},
		{Assessment{State: trust.Trusted, Score: 0.85}, false},
		{Assessment{State: trust.Trusted, Score: 0.95}, true},
		{Assessment{State: trust.Trusted, Score: 0.89996}, true},   // decimal("0.9000") to Cedar
		{Assessment{State: trust.Trusted, Score: 0.899949}, false}, // decimal("0.8999")
	}
	for i, s := range steps {
		if got, p := decide(parent, s.as); got != s.want {
			t.Fatalf("step %d, %+v: allow %v, want %v (principal %v)", i, s.as, got, s.want, p.Attrs)
		}
	}
	// Another chain, through the same holder's parent, is its own principal.
	_, pc := decide(child, trusted)
	if pc.UID.ID != child.ID || pc.Attrs["delegation"] != derived.Leaf().ID {
		t.Fatalf("the sub-agent's principal: %v %v", pc.UID, pc.Attrs)
	}
	if _, pp := decide(parent, trusted); pp.UID.ID != parent.ID || pp.Attrs["delegation"] != root.Leaf().ID {
		t.Fatalf("the agent's principal after its sub-agent's: %v %v", pp.UID, pp.Attrs)
	}
	// A chain through a delegation the policy blocks is refused however
	// its agent's principal was asked for before.
	g := rootGrant(agent)
	g.ID = "dg_0b10cced000000000000000000000000"
	blocked := issue(t, key, g)
	if ok, _ := decide(&Agent{ID: blocked.AgentID(), Chain: blocked}, trusted); ok {
		t.Fatal("an agent whose chain passes through the blocked delegation was allowed")
	}
	// An Agent that is not the chain's own holder gets nothing of the
	// chain's memo.
	if p := Principal(&Agent{ID: "ag_other", Chain: root}, trusted); p.UID.ID != "ag_other" {
		t.Fatalf("principal of another id: %v", p.UID)
	}
	// A score Cedar cannot hold is refused by the decision, not memoized.
	if _, err := set.Decide(context.Background(), policy.Request{
		Principal: policy.UID{Type: TypeAgent, ID: parent.ID}, Action: policy.UID{Type: "Action", ID: ActionJoinScene},
		Resource: policy.UID{Type: "Scene", ID: "foundry"}, Entities: []policy.Entity{Principal(parent, Assessment{State: trust.Trusted, Score: nan()})},
	}); err == nil {
		t.Fatal("a NaN score was decided")
	}
	if ok, _ := decide(parent, trusted); !ok {
		t.Fatal("the trusted agent after a NaN score")
	}
}

func nan() float64 { var z float64; return z / z }

// The verified-token memo answers only the exact token: a token with one
// character changed is verified anew (and refused), and each chain is its
// own.
func TestVerifiedTokenMemoIsExact(t *testing.T) {
	key, agent, other := realmKey(t), agentKey(t), agentKey(t)
	v := NewVerifier(NewRootSet(KeySigner{Key: key}.Address()), 0)
	a, b := issue(t, key, rootGrant(agent)), issue(t, key, rootGrant(other))
	for range 2 {
		ca, err := v.VerifyToken(a.Token(), t0)
		if err != nil {
			t.Fatal(err)
		}
		cb, err := v.VerifyToken(b.Token(), t0)
		if err != nil {
			t.Fatal(err)
		}
		if ca.AgentID() != a.AgentID() || cb.AgentID() != b.AgentID() || ca == cb {
			t.Fatalf("chains mixed up: %s %s", ca.AgentID(), cb.AgentID())
		}
	}
	tok := a.Token()
	// Change the last character of the root's signature, and one of its
	// payload: both must be verified, and refused.
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	payloadAt := len("zrd1~") + 3
	for _, bad := range []string{flip(tok, len(tok)-2), flip(tok, payloadAt), tok + "A", strings.TrimSuffix(tok, tok[len(tok)-1:])} {
		if _, err := v.VerifyToken(bad, t0); err == nil {
			t.Fatalf("a changed token verified: %q", bad)
		}
	}
	if len(v.verified) != 2 {
		t.Fatalf("memo holds %d tokens, want the 2 that verified", len(v.verified))
	}
}

// A revoked delegation is refused although its token's chain is
// remembered as verified: the memo keeps signatures, never the state.
func TestRevokedDelegationRefusedWhenRemembered(t *testing.T) {
	r := newTestRealm(t)
	g := r.node(t, Config{})
	agent, sub := agentKey(t), agentKey(t)
	root := issue(t, r.key, rootGrant(agent))
	derived, err := Derive(root, agent, subGrant(sub))
	if err != nil {
		t.Fatal(err)
	}
	a := mustAgent(t, g, root, agent)
	s := mustAgent(t, g, derived, sub)
	evaluate(t, g, a, transfer(10))
	evaluate(t, g, s, command(RiskLow))
	if err := g.Revocations().Revoke(context.Background(), root.Root().ID, testOwner, "test"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		chain  *Chain
		holder ed25519.PrivateKey
	}{{root, agent}, {derived, sub}} {
		if _, err := request(t, g, c.chain, c.holder); ReasonOf(err) != ReasonRevoked {
			t.Fatalf("%s after revocation: %v", c.chain.AgentID(), err)
		}
	}
	if _, err := g.Evaluate(context.Background(), a, transfer(10)); ReasonOf(err) != ReasonRevoked {
		t.Fatalf("Evaluate after revocation: %v", err)
	}
}

// The claims of a proof as NewProof writes them are read by the scan (so
// the strict read is the exception), and say what was signed.
func TestProofClaimsAreScanned(t *testing.T) {
	key := agentKey(t)
	for _, nonce := range []string{"", "bm9uY2U"} {
		proof, err := NewProof(key, "POST", testURL+"?q=1", "zrd1~token", nonce, t0)
		if err != nil {
			t.Fatal(err)
		}
		c64 := strings.Split(proof, ".")[1]
		raw, err := base64.RawURLEncoding.DecodeString(c64)
		if err != nil {
			t.Fatal(err)
		}
		c, ok := claimsFast(raw)
		if !ok {
			t.Fatalf("NewProof's claims not scanned: %s", raw)
		}
		if c.HTM != "POST" || c.HTU != testURL || c.IAT != t0.Unix() || c.ATH != TokenHash("zrd1~token") || c.Nonce != nonce || len(c.JTI) != 32 {
			t.Fatalf("scanned claims: %+v", c)
		}
	}
	// What the scan leaves is decided by the strict read: a duplicate
	// claim in another case is still refused.
	v := NewProofVerifier(ProofConfig{NoNonce: true})
	pub := pubOf(key)
	header := `{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"` + EncodeAgentKey(pub) + `"}}`
	claims := `{"jti":"a","htm":"POST","htu":"` + testURL + `","iat":` + strconv.FormatInt(t0.Unix(), 10) + `,"ath":"` + TokenHash("t") + `"`
	if _, err := v.Verify(ProofRequest{Method: "POST", URL: testURL, Token: "t", Proof: signJWS(key, header, claims+`}`)}, pub, t0); err != nil {
		t.Fatalf("the same claims, well formed: %v", err)
	}
	dup := signJWS(key, header, claims+`,"HTM":"GET"}`)
	if _, err := v.Verify(ProofRequest{Method: "POST", URL: testURL, Token: "t", Proof: dup}, pub, t0); ReasonOf(err) != ReasonProof {
		t.Fatalf("claims with htm twice: %v", err)
	}
}
