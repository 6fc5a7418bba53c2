package agents

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

const testURL = "https://realm.example/v1/twins/press-line/actuators/conveyor/commands"

// signJWS makes a compact JWS from raw header and claims JSON, so tests
// can send what NewProof would never make.
func signJWS(key ed25519.PrivateKey, header, claims string) string {
	s := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	return s + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(s)))
}

func proofFor(t testing.TB, key ed25519.PrivateKey, method, u, token, nonce string, at time.Time) string {
	t.Helper()
	p, err := NewProof(key, method, u, token, nonce, at)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// forgeClaims replaces a proof's claims, keeping its header and signature.
func forgeClaims(proof, claims string) string {
	h, rest, _ := strings.Cut(proof, ".")
	_, sig, _ := strings.Cut(rest, ".")
	return h + "." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + "." + sig
}

func TestProofOfPossession(t *testing.T) {
	agent := agentKey(t)
	chain := issue(t, realmKey(t), rootGrant(agent))
	token := chain.Token()
	v := NewProofVerifier(ProofConfig{})
	now := t0
	nonce := v.Nonce(now)
	good := proofFor(t, agent, "POST", testURL+"?wait=1", token, nonce, now)

	if _, err := v.Verify(ProofRequest{Method: "POST", URL: testURL, Token: token, Proof: good}, chain.AgentKey(), now.Add(time.Second)); err != nil {
		t.Fatalf("a good proof: %v", err)
	}
	// The same proof again, to this node, is a replay.
	_, err := v.Verify(ProofRequest{Method: "POST", URL: testURL, Token: token, Proof: good}, chain.AgentKey(), now.Add(2*time.Second))
	wantReason(t, err, ReasonReplay)

	thief := agentKey(t)
	cases := []struct {
		name string
		req  ProofRequest
		at   time.Time
		want Reason
	}{
		{"stolen token, thief's own key", ProofRequest{"POST", testURL, token, proofFor(t, thief, "POST", testURL, token, nonce, now)}, now, ReasonProofBinding},
		{"no proof", ProofRequest{"POST", testURL, token, ""}, now, ReasonProof},
		{"another method", ProofRequest{"DELETE", testURL, token, proofFor(t, agent, "POST", testURL, token, nonce, now)}, now, ReasonProofBinding},
		{"another URL", ProofRequest{"POST", "https://realm.example/v1/assets/transfers", token, proofFor(t, agent, "POST", testURL, token, nonce, now)}, now, ReasonProofBinding},
		{"another host", ProofRequest{"POST", strings.Replace(testURL, "realm.example", "evil.example", 1), token, proofFor(t, agent, "POST", testURL, token, nonce, now)}, now, ReasonProofBinding},
		{"another token", ProofRequest{"POST", testURL, token, proofFor(t, agent, "POST", testURL, issue(t, realmKey(t), rootGrant(agent)).Token(), nonce, now)}, now, ReasonProofBinding},
		{"made too long ago", ProofRequest{"POST", testURL, token, proofFor(t, agent, "POST", testURL, token, nonce, now)}, now.Add(31 * time.Second), ReasonProofStale},
		{"made in the future", ProofRequest{"POST", testURL, token, proofFor(t, agent, "POST", testURL, token, nonce, now.Add(time.Minute))}, now, ReasonProofStale},
		{"no nonce", ProofRequest{"POST", testURL, token, proofFor(t, agent, "POST", testURL, token, "", now)}, now, ReasonNonce},
		{"another node's nonce", ProofRequest{"POST", testURL, token, proofFor(t, agent, "POST", testURL, token, NewProofVerifier(ProofConfig{}).Nonce(now), now)}, now, ReasonNonce},
		{"expired nonce", ProofRequest{"POST", testURL, token, proofFor(t, agent, "POST", testURL, token, v.Nonce(now.Add(-6*time.Minute)), now)}, now, ReasonNonce},
		// The verifier remembers headers and nonces it read; neither spares a check.
		{"a nonce read before, expired since", ProofRequest{"POST", testURL, token, proofFor(t, agent, "POST", testURL, token, nonce, now.Add(6*time.Minute))}, now.Add(6 * time.Minute), ReasonNonce},
		{"a header read before, a forged signature", ProofRequest{"POST", testURL, token, forgeClaims(good, `{"jti":"x","htm":"POST","htu":"`+testURL+`","iat":1,"ath":"a"}`)}, now, ReasonProof},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(tc.req, chain.AgentKey(), tc.at)
			wantReason(t, err, tc.want)
		})
	}

	// Equivalent URLs per RFC 9449 4.3: case of scheme and host, default
	// port, query.
	p := proofFor(t, agent, "GET", "HTTPS://Realm.Example:443/v1/agents/me?x=1#f", token, nonce, now)
	if _, err := v.Verify(ProofRequest{"GET", "https://realm.example/v1/agents/me", token, p}, chain.AgentKey(), now); err != nil {
		t.Fatalf("an equivalent URL: %v", err)
	}
}

// A bad proof must not burn a good proof's id: the id is remembered only
// once everything else holds.
func TestRefusedProofIsNotRemembered(t *testing.T) {
	agent := agentKey(t)
	token := issue(t, realmKey(t), rootGrant(agent)).Token()
	v := NewProofVerifier(ProofConfig{NoNonce: true})
	p := proofFor(t, agent, "POST", testURL, token, "", t0)
	if _, err := v.Verify(ProofRequest{"GET", testURL, token, p}, pubOf(agent), t0); err == nil {
		t.Fatal("wrong method accepted")
	}
	if _, err := v.Verify(ProofRequest{"POST", testURL, token, p}, pubOf(agent), t0); err != nil {
		t.Fatalf("the proof after a refused use: %v", err)
	}
}

// The replay cache is bounded: full of proofs that could still be
// replayed, it refuses new ones rather than forget; a period later it has
// room again.
func TestReplayCacheIsBounded(t *testing.T) {
	agent := agentKey(t)
	token := issue(t, realmKey(t), rootGrant(agent)).Token()
	v := NewProofVerifier(ProofConfig{NoNonce: true, MaxRemembered: 3, Skew: 10 * time.Second})
	verify := func(at time.Time) error {
		_, err := v.Verify(ProofRequest{"POST", testURL, token, proofFor(t, agent, "POST", testURL, token, "", at)}, pubOf(agent), at)
		return err
	}
	for i := range 3 {
		if err := verify(t0.Add(time.Duration(i) * time.Second)); err != nil {
			t.Fatalf("proof %d: %v", i, err)
		}
	}
	wantReason(t, verify(t0.Add(3*time.Second)), ReasonReplay)
	// Two periods on, both generations are older than any acceptable proof.
	if err := verify(t0.Add(41 * time.Second)); err != nil {
		t.Fatalf("after the cache aged: %v", err)
	}
}

func TestParseProofRefuses(t *testing.T) {
	agent := agentKey(t)
	x := EncodeAgentKey(pubOf(agent))
	claims := `{"jti":"1","htm":"POST","htu":"` + testURL + `","iat":1796472000,"ath":"x"}`
	hdr := func(s string) string { return signJWS(agent, s, claims) }
	okHeader := `{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}}`
	good := hdr(okHeader)
	if _, err := ParseProof(good); err != nil {
		t.Fatalf("the control proof: %v", err)
	}
	cases := map[string]string{
		"alg none":           hdr(`{"typ":"dpop+jwt","alg":"none","jwk":{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}}`),
		"alg HS256":          hdr(`{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}}`),
		"typ jwt":            hdr(`{"typ":"jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}}`),
		"private jwk":        hdr(`{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"` + x + `","d":"AAAA"}}`),
		"crit":               hdr(`{"typ":"dpop+jwt","alg":"EdDSA","crit":["b64"],"jwk":{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}}`),
		"EC key":             hdr(`{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"EC","crv":"P-256","x":"` + x + `"}}`),
		"duplicate member":   hdr(`{"typ":"dpop+jwt","alg":"EdDSA","alg":"none","jwk":{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}}`),
		"two segments":       good[:strings.LastIndex(good, ".")],
		"four segments":      good + ".x",
		"signature by other": signJWS(agentKey(t), okHeader, claims),
		"no jti":             signJWS(agent, okHeader, `{"htm":"POST","htu":"`+testURL+`","iat":1796472000,"ath":"x"}`),
		"no ath":             signJWS(agent, okHeader, `{"jti":"1","htm":"POST","htu":"`+testURL+`","iat":1796472000}`),
		"claims not object":  signJWS(agent, okHeader, `"x"`),
		"too long":           strings.Repeat("A", MaxProofLen+1),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseProof(p)
			wantReason(t, err, ReasonProof)
		})
	}
}
