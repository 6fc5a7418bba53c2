package agents

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

// fuzzKeys are fixed, so the seeds verify on every run.
func fuzzKeys(f *testing.F) (*ecdsa.PrivateKey, ed25519.PrivateKey, ed25519.PrivateKey) {
	realm, err := crypto.ToECDSA(make32(7))
	if err != nil {
		f.Fatal(err)
	}
	return realm, ed25519.NewKeyFromSeed(make32(8)), ed25519.NewKeyFromSeed(make32(9))
}

func make32(b byte) []byte {
	s := make([]byte, 32)
	for i := range s {
		s[i] = b
	}
	return s
}

// FuzzParse feeds Parse and Verify tokens: a chain that parses must
// encode back to the same bytes (so what is verified is what was sent),
// and Verify must answer every parsed chain with nil or a DenyError.
func FuzzParse(f *testing.F) {
	realm, agent, sub := fuzzKeys(f)
	root := issue(f, realm, rootGrant(agent))
	derived, err := Derive(root, agent, subGrant(sub))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(root.Token())
	f.Add(derived.Token())
	f.Add("zrd1~")
	f.Add("zrd1~e30.AA")
	v := NewVerifier(NewRootSet(KeySigner{Key: realm}.Address()), 0)
	f.Fuzz(func(t *testing.T, token string) {
		c, err := Parse(token)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("Parse error without a reason: %v", err)
			}
			return
		}
		if got := encodeToken(c.Blocks); got != token {
			t.Fatalf("re-encoded %q, parsed %q", got, token)
		}
		if err := v.Verify(c, t0.Add(time.Hour)); err != nil && ReasonOf(err) == "" {
			t.Fatalf("Verify error without a reason: %v", err)
		}
	})
}

// FuzzDecodeClaims compares the scan of a proof's plain claims with the
// strict read it stands in for: whatever the scan takes, the strict read
// takes too, with the same claims. (What the scan leaves, the strict read
// alone decides.)
func FuzzDecodeClaims(f *testing.F) {
	for _, s := range []string{
		`{"jti":"0a1b","htm":"POST","htu":"https://realm.example/v1/assets/transfers","iat":1767225600,"ath":"abc-_","nonce":"n"}`,
		`{"jti":"a","htm":"GET","htu":"u","iat":1,"ath":"x"}`,
		`{}`, `{"jti":"a","jti":"b"}`, `{"JTI":"a"}`, `{"iat":01}`, `{"iat":-1}`, `{"iat":1e3}`,
		`{"iat":9223372036854775807}`, `{"jti":"\u0061"}`, `{"jti":"a",}`, `{ "jti":"a"}`,
		`{"jti":"a","x":1}`, `{"iat":"1"}`, `{"jti":null}`, `[]`, `{"jti":"a"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ok := claimsFast(raw)
		if !ok {
			return
		}
		var strict proofClaims
		if err := decodeJSON(raw, &strict); err != nil {
			t.Fatalf("the scan read %q, the strict read refuses it: %v", raw, err)
		}
		if fast != strict {
			t.Fatalf("%q: the scan read %+v, the strict read %+v", raw, fast, strict)
		}
	})
}

// FuzzParseProof feeds ParseProof and the whole proof check: every
// refusal has a reason, and a proof that parses verified with its own key.
func FuzzParseProof(f *testing.F) {
	_, agent, _ := fuzzKeys(f)
	token := "zrd1~e30.AA"
	v := NewProofVerifier(ProofConfig{NoNonce: true})
	good, err := NewProof(agent, "POST", testURL, token, "", t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(signJWS(agent, `{"typ":"dpop+jwt","alg":"none"}`, `{}`))
	f.Add("..")
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := ParseProof(proof)
		// The verifier's memo of headers reads as ParseProof does.
		if q, qerr := parseProof(proof, v.header); (qerr == nil) != (err == nil) || (err == nil && !q.Key.Equal(p.Key)) {
			t.Fatalf("with the header memo: %v, %v; without: %v", q, qerr, err)
		}
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("ParseProof error without a reason: %v", err)
			}
			return
		}
		if len(p.Key) != ed25519.PublicKeySize || p.JTI == "" {
			t.Fatalf("parsed proof without key or jti: %+v", p)
		}
		if _, err := v.Verify(ProofRequest{Method: "POST", URL: testURL, Token: token, Proof: proof}, p.Key, t0); err != nil && ReasonOf(err) == "" {
			t.Fatalf("Verify error without a reason: %v", err)
		}
	})
}

// FuzzProofRequestFromHTTP feeds the header parsing of the HTTP edge.
func FuzzProofRequestFromHTTP(f *testing.F) {
	f.Add("DPoP zrd1~e30.AA", "a.b.c")
	f.Add("dpop   x", "")
	f.Add("Bearer x", "x")
	base, _ := url.Parse("https://realm.example")
	f.Fuzz(func(t *testing.T, authorization, proof string) {
		r := httptest.NewRequest("POST", testURL, nil)
		r.Header["Authorization"] = []string{authorization}
		r.Header["Dpop"] = []string{proof}
		req, err := ProofRequestFromHTTP(r, base)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if req.Token == "" || strings.ContainsAny(req.Token, " \t") || req.URL != testURL {
			t.Fatalf("accepted %+v", req)
		}
	})
}
