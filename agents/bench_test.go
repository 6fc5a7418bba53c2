package agents

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/trust"
)

// BenchmarkVerifyChain is the per-request cost of checking a delegation:
// parse, the root's secp256k1 recovery, one Ed25519 verification per
// derived block.
func BenchmarkVerifyChain(b *testing.B) {
	key := realmKey(b)
	holder := agentKey(b)
	chain := issue(b, key, rootGrant(holder))
	v := NewVerifier(NewRootSet(KeySigner{Key: key}.Address()), 0)
	for depth := 1; depth <= 4; depth++ {
		if depth > 1 {
			next := agentKey(b)
			g := subGrant(next)
			g.Limits.CommandsPerMinute -= uint32(depth)
			var err error
			if chain, err = Derive(chain, holder, g); err != nil {
				b.Fatal(err)
			}
			holder = next
		}
		token := chain.Token()
		b.Run(fmt.Sprintf("blocks=%d", depth), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(token)))
			for b.Loop() {
				c, err := Parse(token)
				if err != nil {
					b.Fatal(err)
				}
				if err := v.Verify(c, t0.Add(time.Hour)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("blocks=%d/cached", depth), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(token)))
			for b.Loop() {
				if _, err := v.VerifyToken(token, t0.Add(time.Hour)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyProof is the per-request cost of DPoP: parse, one Ed25519
// verification, the binding checks and the replay cache. Each iteration
// verifies a fresh proof (made outside the timer in batches).
func BenchmarkVerifyProof(b *testing.B) {
	agent := agentKey(b)
	token := issue(b, realmKey(b), rootGrant(agent)).Token()
	v := NewProofVerifier(ProofConfig{})
	nonce := v.Nonce(t0)
	const batch = 1024
	proofs := make([]string, batch)
	b.ReportAllocs()
	i := batch
	for b.Loop() {
		if i == batch {
			b.StopTimer()
			for j := range proofs {
				proofs[j] = proofFor(b, agent, "POST", testURL, token, nonce, t0)
			}
			i = 0
			b.StartTimer()
		}
		if _, err := v.Verify(ProofRequest{Method: "POST", URL: testURL, Token: token, Proof: proofs[i]}, pubOf(agent), t0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGuard is what the realm will add to an agent's request: the
// whole Authenticate (cached chain, revocations, DPoP), Evaluate (a
// transfer reads the day's counter from the store; joining a scene reads
// none) and, for a transfer, Spend (one compare-and-set), against an
// embedded NATS server.
func BenchmarkGuard(b *testing.B) {
	r := newTestRealm(b)
	node := r.node(b, Config{Proof: ProofConfig{MaxRemembered: 1 << 22}})
	agent := agentKey(b)
	g := rootGrant(agent)
	g.Limits.DailyValue, g.Limits.TransferValue, g.Limits.AutoApproveValue = 1<<62, 1<<40, 1<<40
	c := issue(b, r.key, g)
	a := mustAgent(b, node, c, agent)
	ctx := context.Background()
	b.Run("authenticate", func(b *testing.B) {
		const batch = 1024
		proofs := make([]string, batch)
		i := batch
		b.ReportAllocs()
		for b.Loop() {
			if i == batch {
				b.StopTimer()
				nonce := node.Nonce()
				for j := range proofs {
					proofs[j] = proofFor(b, agent, "POST", testURL, c.Token(), nonce, r.clock.Now())
				}
				i = 0
				b.StartTimer()
			}
			if _, err := node.Authenticate(ctx, ProofRequest{Method: "POST", URL: testURL, Token: c.Token(), Proof: proofs[i]}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("evaluate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d, err := node.Evaluate(ctx, a, transfer(1)); err != nil || d.Outcome != Allow {
				b.Fatal(d, err)
			}
		}
	})
	b.Run("evaluate-join", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d, err := node.Evaluate(ctx, a, joinFoundry); err != nil || d.Outcome != Allow {
				b.Fatal(d, err)
			}
		}
	})
	// What the guard costs an allowed transfer: its decision, then its
	// spend (Cedar, between the two, is the same for a person).
	b.Run("evaluate-spend", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d, err := node.Evaluate(ctx, a, transfer(1)); err != nil || d.Outcome != Allow {
				b.Fatal(d, err)
			}
			if err := node.Spend(ctx, a, transfer(1)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("spend", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := node.Spend(ctx, a, transfer(1)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPerRequestMemos compares, in one process, each per-request step
// this package now serves from what it worked out before with the way it
// did it before: the proof's claims scanned or read strictly, a verified
// token found by its text or by its SHA-256, and the Agent principal
// converted for Cedar once per trust or on every request.
//
//	go test -run '^$' -bench BenchmarkPerRequestMemos -benchtime 20000x -count 6 ./agents
func BenchmarkPerRequestMemos(b *testing.B) {
	agent := agentKey(b)
	key := realmKey(b)
	c := issue(b, key, rootGrant(agent))
	proof := proofFor(b, agent, "POST", testURL, c.Token(), "bm9uY2U", t0)
	c64 := strings.Split(proof, ".")[1]
	b.Run("claims/scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeClaims(c64); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("claims/strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var pc proofClaims
			if err := decodeSegment(c64, &pc); err != nil {
				b.Fatal(err)
			}
		}
	})
	token := c.Token()
	v := NewVerifier(NewRootSet(KeySigner{Key: key}.Address()), 0)
	if _, err := v.VerifyToken(token, t0); err != nil {
		b.Fatal(err)
	}
	b.Run("token/text", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.VerifyToken(token, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
	byDigest := map[[32]byte]*Chain{sha256.Sum256([]byte(token)): c}
	var mu sync.Mutex
	b.Run("token/sha256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h := sha256.Sum256([]byte(token))
			mu.Lock()
			hit := byDigest[h]
			mu.Unlock()
			if hit == nil || v.checkTimes(hit, t0) != nil {
				b.Fatal("no chain")
			}
		}
	})
	set, err := policy.Parse("agents.cedar", []byte(agentPolicies))
	if err != nil {
		b.Fatal(err)
	}
	a := &Agent{ID: c.AgentID(), Chain: c}
	as := Assessment{State: trust.Trusted, Score: 0.9731}
	decide := func(b *testing.B, principal func() policy.Entity) {
		b.ReportAllocs()
		for b.Loop() {
			p := principal()
			if _, err := set.Decide(context.Background(), policy.Request{
				Principal: p.UID, Action: policy.UID{Type: "Action", ID: ActionJoinScene},
				Resource: policy.UID{Type: "Scene", ID: "foundry"}, Entities: []policy.Entity{p},
			}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("principal/once-per-trust", func(b *testing.B) { decide(b, func() policy.Entity { return Principal(a, as) }) })
	b.Run("principal/every-request", func(b *testing.B) { decide(b, func() policy.Entity { return newPrincipal(a.ID, c, as) }) })
}
