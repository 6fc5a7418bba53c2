package agents

import (
	"fmt"
	"testing"
	"time"
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
