package agents

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

// t0 is the tests' "now": a fixed time, so no test depends on the wall clock.
var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

const testOwner = "av_0123456789abcdef0123456789abcdef"

func realmKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func agentKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// rootGrant is a typical delegation for an operations agent: a scene, a
// twin, a collection, modest limits, eight hours.
func rootGrant(agent ed25519.PrivateKey) Grant {
	return Grant{
		Owner:   testOwner,
		Agent:   EncodeAgentKey(pubOf(agent)),
		Actions: []string{ActionJoinScene, ActionTransferAsset, ActionCommandActuator, ActionViewTwin},
		Resources: []Resource{
			{Kind: KindScene, ID: "foundry"},
			{Kind: KindTwin, ID: "press-line"},
			{Kind: KindCollection, ID: "ore"},
		},
		Limits:    Limits{TransferValue: 1000, DailyValue: 5000, AutoApproveValue: 200, CommandsPerMinute: 30, MaxRisk: RiskHigh},
		IssuedAt:  t0,
		ExpiresAt: t0.Add(8 * time.Hour),
	}
}

func issue(t testing.TB, key *ecdsa.PrivateKey, g Grant) *Chain {
	t.Helper()
	signer := KeySigner{Key: key}
	d, err := PrepareRoot(g, signer.Address())
	if err != nil {
		t.Fatalf("PrepareRoot: %v", err)
	}
	c, err := d.Sign(signer)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return c
}

// subGrant narrows rootGrant to one actuator, commands only.
func subGrant(sub ed25519.PrivateKey) Grant {
	return Grant{
		Owner:     testOwner,
		Agent:     EncodeAgentKey(pubOf(sub)),
		Actions:   []string{ActionCommandActuator},
		Resources: []Resource{{Kind: KindActuator, ID: "press-line/conveyor"}},
		Limits:    Limits{CommandsPerMinute: 10, MaxRisk: RiskMedium},
		IssuedAt:  t0,
		ExpiresAt: t0.Add(2 * time.Hour),
	}
}

func wantReason(t testing.TB, err error, want Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want reason %s", want)
	}
	if got := ReasonOf(err); got != want {
		t.Fatalf("reason = %q (%v), want %q", got, err, want)
	}
}
