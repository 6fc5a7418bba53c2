package market

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"go.uber.org/goleak"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/idempotency"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
)

// TestMain: the ledger a Service opens runs goroutines (checkpoints, the
// head file's writer), and each must end when the Service closes.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// marketScenes are the realm's test scenes: a unique, a soulbound and a
// fungible collection.
const marketScenes = "../../testdata"

type testMarket struct {
	s     *Service
	store *store.Store
	ring  *assets.KeyRing
}

// unreached stands for the decider, trust, step-ups and auditor in tests
// that never reach them: the test fails if one is called.
type unreached struct{ t *testing.T }

func (u unreached) fail(what string) {
	u.t.Helper()
	u.t.Fatalf("%s was called by a test that should not reach it", what)
}

func (u unreached) DecideAndWait(context.Context, *scenes.Scene, edge.Principal, trust.Assessment, string, policy.UID, map[string]any, ...policy.Entity) (policy.Decision, error) {
	u.fail("DecideAndWait")
	return policy.Decision{}, nil
}
func (u unreached) Assess(context.Context, session.Session) trust.Assessment {
	u.fail("Assess")
	return trust.Assessment{}
}
func (u unreached) Consume(context.Context, string, []byte) error { u.fail("Consume"); return nil }
func (u unreached) AllowQueued(*http.Request, string, string, string, string, map[string]any) {
	u.fail("AllowQueued")
}
func (u unreached) DenyQueued(*http.Request, string, string, string, error) { u.fail("DenyQueued") }

// openTestMarket opens a Service over a real embedded NATS server and a
// key ring in dir (a fresh one when dir is empty).
func openTestMarket(t *testing.T, st *store.Store, dir string) testMarket {
	t.Helper()
	if st == nil {
		srv := natstest.RunServer(t)
		var err error
		st, err = store.New(context.Background(), natstest.ConnectInProcess(t, srv), store.Config{RecordKey: make([]byte, 32)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if dir == "" {
		dir = t.TempDir()
	}
	ring, err := assets.OpenKeyRing(dir, assets.DevPassphrase, keystore.LightScryptN)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ring.Active()
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := scenes.LoadDir(marketScenes)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Deps{
		Node: "n1", Store: st, Scenes: catalog.Scenes(),
		Signer: key, Passphrase: assets.DevPassphrase, Keys: ring,
		HeadFile: filepath.Join(t.TempDir(), "ledger-head"),
		Decider:  unreached{t}, Trust: unreached{t}, StepUps: unreached{t}, Auditor: unreached{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return testMarket{s: s, store: st, ring: ring}
}

func principal(avatarID string) edge.Principal {
	return edge.Principal{Avatar: &avatar.Avatar{ID: avatarID}}
}

func statusOf(err error) int {
	var he *edge.Error
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// TestRetries: what a transfer's retry meets. An Idempotency-Key is
// taken once per avatar and intent (another intent is refused, a refused
// request frees it); an intent applied already is answered with its
// receipt, replayed; a refusal because the intent's own nonce is spent
// becomes its receipt, and a retry whose first request has none is told
// to come back (ErrInProgress).
func TestRetries(t *testing.T) {
	ctx := context.Background()
	m := openTestMarket(t, nil, "")
	owner, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	from := crypto.PubkeyToAddress(owner.PublicKey)
	if _, err := m.s.ledger.Mint(ctx, "relics", "vase", from, 1); err != nil {
		t.Fatal(err)
	}
	tr := assets.Transfer{Collection: "relics", AssetID: "vase", Amount: 1, From: from, To: common.HexToAddress("0x2222222222222222222222222222222222222222"),
		Nonce: 1, Deadline: uint64(time.Now().Add(time.Hour).Unix())}
	digest := m.s.scheme.TransferDigest(&tr)
	other := tr
	other.Nonce = 2
	otherDigest := m.s.scheme.TransferDigest(&other)
	ada := principal("ada")

	if retry, release, err := m.s.claimKey(ctx, ada, "", digest); retry || err != nil || release == nil {
		t.Fatalf("without a key: retry %v, %v; want a new request", retry, err)
	}
	if _, _, err := m.s.claimKey(ctx, ada, strings.Repeat("k", 256), digest); !errors.Is(err, idempotency.ErrInvalidKey) {
		t.Fatalf("a 256-character key: %v, want ErrInvalidKey", err)
	}
	retry, release, err := m.s.claimKey(ctx, ada, "k1", digest)
	if retry || err != nil {
		t.Fatalf("first use of k1: retry %v, %v", retry, err)
	}
	if retry, _, err := m.s.claimKey(ctx, ada, "k1", digest); !retry || err != nil {
		t.Fatalf("k1 again for the same intent: retry %v, %v; want a retry", retry, err)
	}
	if _, _, err := m.s.claimKey(ctx, ada, "k1", otherDigest); !errors.Is(err, idempotency.ErrKeyReused) {
		t.Fatalf("k1 for another intent: %v, want ErrKeyReused", err)
	}
	if _, _, err := m.s.claimKey(ctx, principal("bob"), "k1", otherDigest); err != nil {
		t.Fatalf("bob's k1: %v; keys are per avatar", err)
	}
	release()
	if retry, _, err := m.s.claimKey(ctx, ada, "k1", otherDigest); retry || err != nil {
		t.Fatalf("k1 after the refused request freed it: retry %v, %v; want it free", retry, err)
	}

	if _, done, err := m.s.ifApplied(ctx, digest); done || err != nil {
		t.Fatalf("an intent not applied: done %v, %v", done, err)
	}
	spent := &assets.RejectError{Reason: assets.ReasonNonceUsed, Detail: "spent"}
	if _, err := m.s.afterRefusal(ctx, digest, true, spent); !errors.Is(err, idempotency.ErrInProgress) {
		t.Fatalf("a retry refused while its first request has no receipt: %v, want ErrInProgress", err)
	}
	if _, err := m.s.afterRefusal(ctx, digest, false, spent); err != spent {
		t.Fatalf("a new request refused: %v, want the refusal", err)
	}

	sig, err := assets.Sign(digest, owner)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := m.s.ledger.Transfer(ctx, tr, sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, get := range map[string]func() (applied, error){
		"applied already":  func() (applied, error) { out, _, err := m.s.ifApplied(ctx, digest); return out, err },
		"refused as spent": func() (applied, error) { return m.s.afterRefusal(ctx, digest, false, spent) },
	} {
		out, err := get()
		if err != nil || !out.replayed || out.digest != digest || out.receipt.Receipt.Sequence != rc.Receipt.Sequence {
			t.Fatalf("%s: %+v, %v; want the receipt (sequence %d), replayed", name, out, err, rc.Receipt.Sequence)
		}
	}
}

// TestSignersPublishedAtEachStart: each start publishes the ring's keys;
// after a rotation the old key is listed retired, the new one current.
func TestSignersPublishedAtEachStart(t *testing.T) {
	keys := t.TempDir()
	first := openTestMarket(t, nil, keys)
	listed, err := first.s.Signers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	old := first.s.ledger.Signer().Hex()
	if len(listed) != 1 || listed[0].Node != "n1" || listed[0].Address != old || !listed[0].Current {
		t.Fatalf("after the first start: %+v, want n1's key %s current", listed, old)
	}
	first.s.Close()

	rotated, err := first.ring.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	again := openTestMarket(t, first.store, keys)
	listed, err = again.s.Signers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[0].Address != old || listed[0].Current || listed[0].Until == nil ||
		listed[1].Address != rotated.Address.Hex() || !listed[1].Current {
		t.Fatalf("after a rotation: %+v, want %s retired then %s current", listed, old, rotated.Address.Hex())
	}
}

// TestNewRefusesWhatItCannotRunWith: missing dependencies are named at
// start, not found by the first request; a verifying contract that is not
// an address is refused rather than replaced by the default.
func TestNewRefusesWhatItCannotRunWith(t *testing.T) {
	_, err := New(context.Background(), Deps{Passphrase: "x"})
	if !errors.Is(err, ErrMissingDeps) || !strings.Contains(err.Error(), "Auditor, Decider, Keys, Signer, StepUps, Store, Trust") {
		t.Fatalf("New with no dependencies: %v", err)
	}
	m := openTestMarket(t, nil, "")
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), Deps{
		Config: Config{VerifyingContract: "0x1234"},
		Node:   "n2", Store: m.store, Signer: key, Passphrase: assets.DevPassphrase, Keys: m.ring,
		Decider: unreached{t}, Trust: unreached{t}, StepUps: unreached{t}, Auditor: unreached{t},
	})
	if err == nil || !strings.Contains(err.Error(), "verifying contract") {
		t.Fatalf("New with a verifying contract that is not an address: %v", err)
	}
}

// TestParseLedgerDigest: a digest is 0x and exactly 64 hex digits.
func TestParseLedgerDigest(t *testing.T) {
	good := "0x" + strings.Repeat("ab", 32)
	if d, err := parseLedgerDigest(good); err != nil || d.Hex() != good {
		t.Fatalf("parseLedgerDigest(%q) = %s, %v", good, d.Hex(), err)
	}
	for _, bad := range []string{"", "0x", strings.Repeat("ab", 32), "0x" + strings.Repeat("ab", 31), "0x" + strings.Repeat("ab", 33), "0x" + strings.Repeat("zz", 32), "0X" + strings.Repeat("ab", 32)} {
		if _, err := parseLedgerDigest(bad); statusOf(err) != http.StatusBadRequest {
			t.Errorf("parseLedgerDigest(%q) = %v, want 400", bad, err)
		}
	}
}

// FuzzParseLedgerDigest: whatever a path segment holds, the parser
// answers a digest that prints back as it was given (in lower case) or a
// 400, never a panic.
func FuzzParseLedgerDigest(f *testing.F) {
	for _, s := range []string{"0x" + strings.Repeat("0", 64), "0x", "", "0x" + strings.Repeat("F", 64), "0xg"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseLedgerDigest(s)
		if err != nil {
			if statusOf(err) != http.StatusBadRequest {
				t.Fatalf("parseLedgerDigest(%q): %v, want a 400", s, err)
			}
			return
		}
		if d.Hex() != strings.ToLower(s) {
			t.Fatalf("parseLedgerDigest(%q) = %s", s, d.Hex())
		}
	})
}

// TestConfigProblems names each setting the realm must refuse to start
// with, and none of a valid one.
func TestConfigProblems(t *testing.T) {
	if p := (Config{VerifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC", CustodyScryptN: 1 << 10, CheckpointEvery: 8, CheckpointInterval: time.Second}).Problems(); len(p) != 0 {
		t.Fatalf("a valid config has problems: %q", p)
	}
	bad := Config{VerifyingContract: "not-an-address", CustodyScryptN: 3, CheckpointInterval: -time.Second}
	p := bad.Problems()
	for i, want := range []string{"verifying contract", "custody scrypt N 3", "checkpoint settings"} {
		if i >= len(p) || !strings.Contains(p[i], want) {
			t.Fatalf("problems %q, want one naming %q at %d", p, want, i)
		}
	}
}
