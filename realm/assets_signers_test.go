package realm

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

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
	bucket, err := b.store.Bucket(context.Background(), store.BucketConfig{Name: signersBucket})
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

// TestMergeSigners: what a start publishes, given what the node published
// before and its key ring.
func TestMergeSigners(t *testing.T) {
	k1, k2, k3 := common.HexToAddress("0x1111111111111111111111111111111111111111"), common.HexToAddress("0x2222222222222222222222222222222222222222"), common.HexToAddress("0x3333333333333333333333333333333333333333")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	ring := []assets.KeyInfo{{Address: k1, Created: t0}}

	first := mergeSigners(nodeSigners{}, "n", ring, k1, t0.Add(time.Minute))
	if len(first.Signers) != 1 || first.Signers[0].Since != t0 || !first.Signers[0].Current || first.Signers[0].Until != nil || first.Node != "n" {
		t.Fatalf("first start: %+v", first)
	}
	// Rotated twice between starts: k2 never was current while published.
	ring = append(ring, assets.KeyInfo{Address: k2, Created: t0.Add(day)}, assets.KeyInfo{Address: k3, Created: t0.Add(2 * day)})
	now := t0.Add(3 * day)
	second := mergeSigners(first, "n", ring, k3, now)
	if len(second.Signers) != 3 {
		t.Fatalf("after two rotations: %+v", second)
	}
	for i, want := range []struct {
		addr    common.Address
		since   time.Time
		current bool
	}{{k1, t0, false}, {k2, t0.Add(day), false}, {k3, t0.Add(2 * day), true}} {
		s := second.Signers[i]
		if s.Address != want.addr.Hex() || !s.Since.Equal(want.since) || s.Current != want.current || (s.Until == nil) != want.current {
			t.Errorf("signer %d: %+v, want %s since %s current %v", i, s, want.addr.Hex(), want.since, want.current)
		}
		if !want.current && !s.Until.Equal(now) {
			t.Errorf("signer %d retired until %s, want this start %s (it may have signed until then)", i, s.Until, now)
		}
	}
	// The next start keeps every period; a removed key file drops nothing.
	third := mergeSigners(second, "n", ring[2:], k3, now.Add(day))
	if len(third.Signers) != 3 || !third.Signers[0].Until.Equal(now) || !third.Signers[1].Until.Equal(now) || !third.Signers[2].Current {
		t.Fatalf("a later start changed the periods: %+v", third)
	}
	// Addresses are compared whatever their case.
	lower := second
	lower.Signers = append([]signerPeriod(nil), second.Signers...)
	lower.Signers[2].Address = strings.ToLower(lower.Signers[2].Address)
	if again := mergeSigners(lower, "n", ring, k3, now.Add(day)); len(again.Signers) != 3 {
		t.Fatalf("a lower-case address was added again: %+v", again)
	}
}
