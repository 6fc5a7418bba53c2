package realm

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm/internal/market"
)

// signerView is one address of GET /v1/assets/signers, as a client reads it.
type signerView struct {
	Node    string     `json:"node"`
	Address string     `json:"address"`
	Since   time.Time  `json:"since"`
	Until   *time.Time `json:"until,omitempty"`
	Current bool       `json:"current"`
}

type signersAnswer struct {
	Self    string       `json:"self"`
	Signers []signerView `json:"signers"`
}

func (a signersAnswer) of(node string) []signerView {
	var out []signerView
	for _, s := range a.Signers {
		if s.Node == node {
			out = append(out, s)
		}
	}
	return out
}

// TestSignersListEveryNodeAcrossRotations: two realm nodes share a NATS
// server; each publishes its receipt signer, and after node a's key is
// rotated and a restarted, every node lists a's old key (retired, with
// its period) beside its new one, so receipts signed before the rotation
// still check out against the API's list.
func TestSignersListEveryNodeAcrossRotations(t *testing.T) {
	srv := natstest.RunServer(t)
	nats := []string{srv.ClientURL()}
	const pass = "signers-test-passphrase"
	cfgA := Config{Listen: "127.0.0.1:0", NATS: nats, Node: "realm-a", DataDir: t.TempDir(),
		Assets: AssetsConfig{KeyPassphrase: pass, KeyScryptN: keystore.LightScryptN}}
	a, stopA := runRealm(t, cfgA)
	b, _ := runRealm(t, Config{Listen: "127.0.0.1:0", NATS: nats, Node: "realm-b", DataDir: t.TempDir(),
		Assets: AssetsConfig{KeyPassphrase: pass, KeyScryptN: keystore.LightScryptN}})
	domainSigner := func(r *Realm) string {
		var d struct{ Signer string }
		if code := get(t, r.URL()+"/v1/assets/domain", &d); code != 200 || d.Signer == "" {
			t.Fatalf("GET /v1/assets/domain = %d %+v", code, d)
		}
		return d.Signer
	}
	signers := func(r *Realm) signersAnswer {
		var s signersAnswer
		if code := get(t, r.URL()+"/v1/assets/signers", &s); code != 200 {
			t.Fatalf("GET /v1/assets/signers = %d", code)
		}
		return s
	}
	oldA, keyB := domainSigner(a), domainSigner(b)
	for _, r := range []*Realm{a, b} {
		s := signers(r) // public: no session
		if s.Self != r.cfg.Node {
			t.Errorf("self = %q, want %q", s.Self, r.cfg.Node)
		}
		as, bs := s.of("realm-a"), s.of("realm-b")
		if len(as) != 1 || as[0].Address != oldA || !as[0].Current || as[0].Until != nil ||
			len(bs) != 1 || bs[0].Address != keyB || !bs[0].Current {
			t.Fatalf("%s lists %+v, want each node's one current key (a %s, b %s)", r.cfg.Node, s.Signers, oldA, keyB)
		}
	}

	// Rotate a's key offline, as `zerorealm keys rotate` does, and restart a.
	stopA()
	ring, err := assets.OpenKeyRing(filepath.Join(cfgA.DataDir, "keys"), pass, keystore.LightScryptN)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := ring.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	a2, stopA2 := runRealm(t, cfgA)
	newA := domainSigner(a2)
	if newA != rotated.Address.Hex() || newA == oldA {
		t.Fatalf("after the rotation a signs with %s, want the new key %s", newA, rotated.Address.Hex())
	}
	for _, r := range []*Realm{a2, b} {
		as := signers(r).of("realm-a")
		if len(as) != 2 {
			t.Fatalf("%s lists a's keys %+v, want the retired and the current one", r.cfg.Node, as)
		}
		old, cur := as[0], as[1]
		if old.Address != oldA || old.Current || old.Until == nil || old.Until.Before(old.Since) ||
			cur.Address != newA || !cur.Current || cur.Until != nil || cur.Since.Before(old.Since) {
			t.Fatalf("%s lists a's keys %+v, want %s retired (since <= until) then %s current", r.cfg.Node, as, oldA, newA)
		}
	}
	// A restart without a rotation changes no period.
	before := signers(b).of("realm-a")
	stopA2()
	a3, _ := runRealm(t, cfgA)
	after := signers(a3).of("realm-a")
	if len(after) != 2 || !after[0].Until.Equal(*before[0].Until) || !after[0].Since.Equal(before[0].Since) || !after[1].Since.Equal(before[1].Since) || !after[1].Current {
		t.Fatalf("after a plain restart a's keys are %+v, were %+v", after, before)
	}

	// An entry that is not a node's (written by anything with access to
	// the bucket) is left out; the others are still listed.
	bucket, err := b.store.Bucket(context.Background(), store.BucketConfig{Name: market.SignersBucket})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for key, value := range map[string]string{
		"realm-x": `not json`,
		"realm-y": `{"node":"realm-z","signers":[{"address":"0x00000000000000000000000000000000000000aa","since":"2026-01-01T00:00:00Z","current":true}]}`,
		"realm-w": `{"node":"realm-w","signers":[{"address":"0xnot-an-address","since":"2026-01-01T00:00:00Z","current":true}]}`,
	} {
		if _, err := bucket.Put(ctx, key, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	s := signers(b)
	for _, v := range s.Signers {
		if v.Node != "realm-a" && v.Node != "realm-b" {
			t.Errorf("lists %+v from an entry that is not a node's", v)
		}
	}
	if len(s.of("realm-a")) != 2 || len(s.of("realm-b")) != 1 {
		t.Fatalf("with bad entries beside them, the nodes' keys are %+v", s.Signers)
	}
}
