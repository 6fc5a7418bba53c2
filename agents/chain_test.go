package agents

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

func TestIssueParseVerify(t *testing.T) {
	key, agent := realmKey(t), agentKey(t)
	c := issue(t, key, rootGrant(agent))
	parsed, err := Parse(c.Token())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	v := NewVerifier(NewRootSet(KeySigner{Key: key}.Address()), 0)
	if err := v.Verify(parsed, t0.Add(time.Hour)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if parsed.Owner() != testOwner || parsed.AgentID() != AgentID(pubOf(agent)) {
		t.Fatalf("owner %s agent %s, want %s %s", parsed.Owner(), parsed.AgentID(), testOwner, AgentID(pubOf(agent)))
	}
	if parsed.Blocks[0].Digest != c.Blocks[0].Digest {
		t.Fatal("the parsed root's digest differs from the issued one")
	}
}

// The owner's step-up confirms the draft's digest; the node that signs
// later must get the same digest from the same grant.
func TestRootDigestIsStable(t *testing.T) {
	key, agent := realmKey(t), agentKey(t)
	issuer := KeySigner{Key: key}.Address()
	g := rootGrant(agent)
	g.ID = NewDelegationID()
	a, err := PrepareRoot(g, issuer)
	if err != nil {
		t.Fatal(err)
	}
	b, err := PrepareRoot(g, issuer)
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest {
		t.Fatal("the same grant gave two digests")
	}
	g.Limits.DailyValue++
	c, err := PrepareRoot(g, issuer)
	if err != nil {
		t.Fatal(err)
	}
	if c.Digest == a.Digest {
		t.Fatal("a changed limit kept the digest")
	}
	if _, err := a.Sign(KeySigner{Key: realmKey(t)}); err == nil {
		t.Fatal("a draft was signed by a key it does not name")
	}
}

func TestSubAgentNarrows(t *testing.T) {
	key, agent, sub := realmKey(t), agentKey(t), agentKey(t)
	root := issue(t, key, rootGrant(agent))
	c, err := Derive(root, agent, subGrant(sub))
	if err != nil {
		t.Fatalf("Derive: %v", err)
	}
	parsed, err := Parse(c.Token())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	v := NewVerifier(NewRootSet(KeySigner{Key: key}.Address()), 0)
	if err := v.Verify(parsed, t0.Add(time.Hour)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got := parsed.Agents(); len(got) != 2 || got[0] != AgentID(pubOf(agent)) || got[1] != AgentID(pubOf(sub)) {
		t.Fatalf("Agents() = %v", got)
	}
	if parsed.AgentID() != AgentID(pubOf(sub)) {
		t.Fatal("the presenting agent is not the sub-agent")
	}
	// The sub-agent's own sub-agent.
	subsub := agentKey(t)
	g := subGrant(subsub)
	g.Limits.CommandsPerMinute = 5
	if _, err := Derive(parsed, sub, g); err != nil {
		t.Fatalf("Derive of a third block: %v", err)
	}
	if _, err := Derive(parsed, agent, g); ReasonOf(err) != ReasonSignature {
		t.Fatalf("Derive by a key that does not hold the leaf: %v, want %s", err, ReasonSignature)
	}
}

// widenings are the ways a sub-delegation could try to grant more than
// its parent; each must be refused by Derive and, when forged past
// Derive, by Verify.
func widenings() map[string]func(*Grant) {
	return map[string]func(*Grant){
		"action":              func(g *Grant) { g.Actions = append(g.Actions, ActionEnterZone) },
		"resource":            func(g *Grant) { g.Resources = append(g.Resources, Resource{Kind: KindTwin, ID: "other"}) },
		"actuator elsewhere":  func(g *Grant) { g.Resources = []Resource{{Kind: KindActuator, ID: "other/conveyor"}} },
		"twin for actuator":   func(g *Grant) { g.Resources = []Resource{{Kind: KindTwin, ID: "press-line"}} },
		"transfer_value":      func(g *Grant) { g.Limits.TransferValue = 1 },
		"daily_value":         func(g *Grant) { g.Limits.DailyValue = 1 },
		"commands_per_minute": func(g *Grant) { g.Limits.CommandsPerMinute = 31 },
		"max_risk":            func(g *Grant) { g.Limits.MaxRisk = RiskHigh },
		"expiry":              func(g *Grant) { g.ExpiresAt = t0.Add(9 * time.Hour) },
		"dated before parent": func(g *Grant) { g.IssuedAt = t0.Add(-time.Minute) },
	}
}

func TestSubAgentCannotWiden(t *testing.T) {
	key, agent, sub := realmKey(t), agentKey(t), agentKey(t)
	// The sub-delegation narrows a parent that itself allows only medium
	// risk, 30 commands and one actuator, so each widening has room to
	// exceed.
	pg := rootGrant(agent)
	pg.Limits = Limits{CommandsPerMinute: 30, MaxRisk: RiskMedium}
	pg.Resources = []Resource{{Kind: KindActuator, ID: "press-line/conveyor"}, {Kind: KindScene, ID: "foundry"}}
	root := issue(t, key, pg)
	v := NewVerifier(NewRootSet(KeySigner{Key: key}.Address()), 0)
	for name, widen := range widenings() {
		t.Run(name, func(t *testing.T) {
			g := subGrant(sub)
			widen(&g)
			if _, err := Derive(root, agent, g); ReasonOf(err) != ReasonWidens {
				t.Fatalf("Derive = %v, want %s", err, ReasonWidens)
			}
			forged := forgeDerive(t, root, agent, g)
			parsed, err := Parse(forged.Token())
			if err != nil {
				t.Fatalf("Parse of the forged chain: %v", err)
			}
			err = v.Verify(parsed, t0.Add(time.Hour))
			wantReason(t, err, ReasonWidens)
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("%v is not ErrUnauthenticated", err)
			}
		})
	}
}

// forgeDerive signs child under parent as the holder would, without the
// narrowing check Derive makes: what a malicious holder can do.
func forgeDerive(t testing.TB, parent *Chain, holder ed25519.PrivateKey, child Grant) *Chain {
	t.Helper()
	leaf := parent.Blocks[len(parent.Blocks)-1]
	child.Version, child.ID = grantVersion, NewDelegationID()
	child.Parent, child.ParentDigest = leaf.Grant.ID, digestHex(leaf.Digest)
	payload, err := json.Marshal(&child)
	if err != nil {
		t.Fatal(err)
	}
	d := blockDigest(payload)
	blocks := append(append([]Block(nil), parent.Blocks...), Block{Grant: child, Payload: payload, Signature: ed25519.Sign(holder, d[:]), Digest: d})
	return &Chain{Blocks: blocks, token: encodeToken(blocks)}
}

func TestVerifyRefuses(t *testing.T) {
	key, agent, sub := realmKey(t), agentKey(t), agentKey(t)
	trusted := NewRootSet(KeySigner{Key: key}.Address())
	v := NewVerifier(trusted, 0)
	root := issue(t, key, rootGrant(agent))
	derived, err := Derive(root, agent, subGrant(sub))
	if err != nil {
		t.Fatal(err)
	}
	otherRoot := issue(t, key, rootGrant(agent))

	cases := []struct {
		name  string
		token func() string
		at    time.Time
		want  Reason
	}{
		{"untrusted root", func() string { return issue(t, realmKey(t), rootGrant(agent)).Token() }, t0, ReasonUntrustedRoot},
		{"tampered root payload", func() string {
			g := root.Blocks[0].Grant
			g.Limits.TransferValue = 1 << 40
			g.Limits.AutoApproveValue = 0
			return swapPayload(t, root, 0, g)
		}, t0, ReasonSignature},
		{"tampered block payload", func() string {
			g := derived.Blocks[1].Grant
			g.Limits.CommandsPerMinute = 1
			return swapPayload(t, derived, 1, g)
		}, t0, ReasonSignature},
		{"block signed by its own holder", func() string {
			return forgeDerive(t, root, sub, subGrant(sub)).Token()
		}, t0, ReasonSignature},
		{"block spliced onto another root", func() string {
			return tokenOf(otherRoot.Blocks[0], derived.Blocks[1])
		}, t0, ReasonBrokenChain},
		{"expired", func() string { return root.Token() }, t0.Add(8 * time.Hour), ReasonExpired},
		{"sub-delegation expired before its parent", func() string { return derived.Token() }, t0.Add(3 * time.Hour), ReasonExpired},
		{"not yet valid", func() string { return root.Token() }, t0.Add(-time.Hour), ReasonNotYetValid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.token())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			wantReason(t, v.Verify(c, tc.at), tc.want)
		})
	}

	// A rotated-out key stops verifying at once.
	trusted.Set(common.Address{1})
	wantReason(t, v.Verify(root, t0), ReasonUntrustedRoot)
}

func swapPayload(t testing.TB, c *Chain, i int, g Grant) string {
	t.Helper()
	payload, err := json.Marshal(&g)
	if err != nil {
		t.Fatal(err)
	}
	blocks := append([]Block(nil), c.Blocks...)
	blocks[i].Payload = payload
	return encodeToken(blocks)
}

func tokenOf(blocks ...Block) string { return encodeToken(blocks) }

func TestParseRefuses(t *testing.T) {
	key, agent := realmKey(t), agentKey(t)
	good := issue(t, key, rootGrant(agent))
	p64, s64, _ := strings.Cut(strings.TrimPrefix(good.Token(), "zrd1~"), ".")
	withGrant := func(edit func(*Grant)) string {
		g := good.Blocks[0].Grant
		edit(&g)
		return swapPayload(t, good, 0, g)
	}
	rawPayload := func(js string) string {
		return "zrd1~" + base64.RawURLEncoding.EncodeToString([]byte(js)) + "." + s64
	}
	cases := []struct {
		name, token string
		want        Reason
	}{
		{"empty", "", ReasonMalformed},
		{"other scheme", "eyJhbGciOi.x.y", ReasonMalformed},
		{"no signature", "zrd1~" + p64, ReasonMalformed},
		{"padded base64", "zrd1~" + p64 + "=." + s64, ReasonMalformed},
		{"short signature", "zrd1~" + p64 + "." + s64[:20], ReasonMalformed},
		{"too long", "zrd1~" + strings.Repeat("A", MaxTokenLen), ReasonMalformed},
		{"too deep", "zrd1" + strings.Repeat("~"+p64+"."+s64, MaxChainDepth+1), ReasonTooDeep},
		{"unknown member", rawPayload(`{"v":1,"extra":true}`), ReasonMalformed},
		{"duplicate member", rawPayload(`{"v":1,"v":1}`), ReasonMalformed},
		{"not an object", rawPayload(`[1]`), ReasonMalformed},
		{"version", withGrant(func(g *Grant) { g.Version = 2 }), ReasonMalformed},
		{"bad id", withGrant(func(g *Grant) { g.ID = "dg_XYZ" }), ReasonMalformed},
		{"bad owner", withGrant(func(g *Grant) { g.Owner = "Robert'); DROP" }), ReasonMalformed},
		{"bad agent key", withGrant(func(g *Grant) { g.Agent = "AAAA" }), ReasonMalformed},
		{"unknown action", withGrant(func(g *Grant) { g.Actions = []string{"ApproveCommand"} }), ReasonMalformed},
		{"no actions", withGrant(func(g *Grant) { g.Actions = nil }), ReasonMalformed},
		{"twice the action", withGrant(func(g *Grant) { g.Actions = []string{ActionViewTwin, ActionViewTwin} }), ReasonMalformed},
		{"bad resource", withGrant(func(g *Grant) { g.Resources = []Resource{{Kind: KindActuator, ID: "conveyor"}} }), ReasonMalformed},
		{"unknown kind", withGrant(func(g *Grant) { g.Resources = []Resource{{Kind: "Avatar", ID: "x"}} }), ReasonMalformed},
		{"critical", withGrant(func(g *Grant) { g.Limits.MaxRisk = RiskCritical }), ReasonCritical},
		{"no risk", withGrant(func(g *Grant) { g.Limits.MaxRisk = "" }), ReasonMalformed},
		{"auto above transfer", withGrant(func(g *Grant) { g.Limits.AutoApproveValue = 2000 }), ReasonMalformed},
		{"rate too high", withGrant(func(g *Grant) { g.Limits.CommandsPerMinute = MaxCommandsPerMinute + 1 }), ReasonMalformed},
		{"longer than 24h", withGrant(func(g *Grant) { g.ExpiresAt = g.IssuedAt.Add(MaxLifetime + time.Second) }), ReasonTooLong},
		{"expiry before issue", withGrant(func(g *Grant) { g.ExpiresAt = g.IssuedAt }), ReasonMalformed},
		{"root with a parent", withGrant(func(g *Grant) { g.Parent = NewDelegationID() }), ReasonMalformed},
		{"issuer not EIP-55", withGrant(func(g *Grant) { g.Issuer = strings.ToLower(g.Issuer) }), ReasonMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.token)
			if c != nil {
				t.Fatal("Parse returned a chain with its error")
			}
			wantReason(t, err, tc.want)
		})
	}
}

func TestPrepareRootRefusesWhatParseWould(t *testing.T) {
	agent := agentKey(t)
	g := rootGrant(agent)
	g.Limits.MaxRisk = RiskCritical
	_, err := PrepareRoot(g, common.Address{1})
	wantReason(t, err, ReasonCritical)
	g = rootGrant(agent)
	g.ExpiresAt = g.IssuedAt.Add(25 * time.Hour)
	_, err = PrepareRoot(g, common.Address{1})
	wantReason(t, err, ReasonTooLong)
}

// A token verified once is not verified again, but what changes with time
// and configuration still refuses it.
func TestVerifyTokenCacheStillChecksTimeAndRoots(t *testing.T) {
	key, agent := realmKey(t), agentKey(t)
	roots := NewRootSet(KeySigner{Key: key}.Address())
	v := NewVerifier(roots, 0)
	token := issue(t, key, rootGrant(agent)).Token()
	for range 2 {
		if _, err := v.VerifyToken(token, t0.Add(time.Hour)); err != nil {
			t.Fatalf("VerifyToken: %v", err)
		}
	}
	if len(v.verified) != 1 {
		t.Fatalf("cache holds %d tokens, want 1", len(v.verified))
	}
	_, err := v.VerifyToken(token, t0.Add(9*time.Hour))
	wantReason(t, err, ReasonExpired)
	roots.Set()
	_, err = v.VerifyToken(token, t0.Add(time.Hour))
	wantReason(t, err, ReasonUntrustedRoot)
	// A refused token is never cached.
	bad := swapPayload(t, issue(t, key, rootGrant(agent)), 0, rootGrant(agent))
	roots.Set(KeySigner{Key: key}.Address())
	for range 2 {
		if _, err := v.VerifyToken(bad, t0); err == nil {
			t.Fatal("a tampered token verified")
		}
	}
}
