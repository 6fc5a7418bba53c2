package agents

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestProofRequestFromHTTP(t *testing.T) {
	agent := agentKey(t)
	c := issue(t, realmKey(t), rootGrant(agent))
	base, _ := url.Parse("https://realm.example")
	v := NewProofVerifier(ProofConfig{})
	proof := proofFor(t, agent, "POST", testURL, c.Token(), v.Nonce(t0), t0)

	r := httptest.NewRequest("POST", "http://10.0.0.7:8080/v1/twins/press-line/actuators/conveyor/commands?wait=1", nil)
	r.Header.Set("Authorization", "DPoP "+c.Token())
	r.Header.Set("DPoP", proof)
	req, err := ProofRequestFromHTTP(r, base)
	if err != nil {
		t.Fatal(err)
	}
	if req.URL != testURL || req.Token != c.Token() || req.Method != "POST" {
		t.Fatalf("ProofRequestFromHTTP = %+v", req)
	}
	if _, err := v.Verify(req, c.AgentKey(), t0); err != nil {
		t.Fatalf("Verify of what the request carried: %v", err)
	}

	for name, edit := range map[string]func(h map[string][]string){
		"bearer":           func(h map[string][]string) { h["Authorization"] = []string{"Bearer " + c.Token()} },
		"no token":         func(h map[string][]string) { h["Authorization"] = []string{"DPoP "} },
		"two tokens":       func(h map[string][]string) { h["Authorization"] = []string{"DPoP a b"} },
		"no authorization": func(h map[string][]string) { delete(h, "Authorization") },
		"two DPoP headers": func(h map[string][]string) { h["Dpop"] = []string{proof, proof} },
		"no DPoP header":   func(h map[string][]string) { delete(h, "Dpop") },
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("POST", testURL, nil)
			r.Header.Set("Authorization", "DPoP "+c.Token())
			r.Header.Set("DPoP", proof)
			edit(r.Header)
			if _, err := ProofRequestFromHTTP(r, base); ReasonOf(err) == "" {
				t.Fatalf("err = %v, want a refusal with a reason", err)
			}
		})
	}
}

func TestChallenge(t *testing.T) {
	for reason, code := range map[Reason]string{
		ReasonNonce:        "use_dpop_nonce",
		ReasonReplay:       "invalid_dpop_proof",
		ReasonProofBinding: "invalid_dpop_proof",
		ReasonRevoked:      "invalid_token",
		ReasonWidens:       "invalid_token",
	} {
		got := Challenge(&DenyError{Reason: reason})
		if !strings.HasPrefix(got, `DPoP algs="EdDSA", error="`+code+`"`) || !strings.Contains(got, string(reason)) {
			t.Errorf("Challenge(%s) = %s", reason, got)
		}
	}
}

func TestApprovalDigestBindsTheAction(t *testing.T) {
	agent := agentKey(t)
	a := &Agent{ID: AgentID(pubOf(agent)), Chain: issue(t, realmKey(t), rootGrant(agent))}
	base := ApprovalDigest(a, transfer(500), "p1")
	if ApprovalDigest(a, transfer(500), "p1") != base {
		t.Fatal("not deterministic")
	}
	for name, d := range map[string][32]byte{
		"value":    ApprovalDigest(a, transfer(501), "p1"),
		"pending":  ApprovalDigest(a, transfer(500), "p2"),
		"resource": ApprovalDigest(a, Action{Name: ActionTransferAsset, Resource: Resource{Kind: KindCollection, ID: "gems"}, Value: 500}, "p1"),
		"agent":    ApprovalDigest(&Agent{ID: "ag_x", Chain: a.Chain}, transfer(500), "p1"),
	} {
		if d == base {
			t.Errorf("another %s, the same digest", name)
		}
	}
	if p := a.Chain.Path(); !strings.HasPrefix(p, testOwner+" > "+a.ID+" (dg_") {
		t.Errorf("Path() = %s", p)
	}
}
