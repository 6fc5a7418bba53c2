package realm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/keyfile"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/market"
	"github.com/zerorealm/zerorealm/realm/internal/node"
)

// attacker holds a NATS connection with every permission and none of the
// realm's keys.
type attacker struct {
	t  *testing.T
	nc *nats.Conn
	js jetstream.JetStream
}

func newAttacker(t *testing.T, url string) *attacker {
	nc := natstest.Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &attacker{t: t, nc: nc, js: js}
}

func (a *attacker) bucket(name string) jetstream.KeyValue {
	a.t.Helper()
	kv, err := a.js.KeyValue(context.Background(), "ZR_"+name)
	if err != nil {
		a.t.Fatal(err)
	}
	return kv
}

func (a *attacker) put(bucket, key string, value []byte) {
	a.t.Helper()
	if _, err := a.bucket(bucket).Put(context.Background(), key, value); err != nil {
		a.t.Fatal(err)
	}
}

func (a *attacker) publish(subject string, data []byte, h nats.Header) {
	a.t.Helper()
	if _, err := a.js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: data, Header: h}); err != nil {
		a.t.Fatal(err)
	}
}

// forgedSeal looks like a sealed value: a version byte, a time and 32
// bytes of tag the attacker can only guess.
func forgedSeal(value []byte) []byte {
	out := make([]byte, 1+8+32, 1+8+32+len(value))
	out[0] = 1
	_, _ = rand.Read(out[1:])
	return append(out, value...)
}

// tamperAudited waits for the StoreTampered event of resource (a bucket or
// stream, a slash, a key or subject) and returns it.
func tamperAudited(t *testing.T, r *Realm, resource, reason string) audit.Event {
	t.Helper()
	var found audit.Event
	eventually(t, "StoreTampered audited for "+resource, func() bool {
		for _, ev := range auditEvents(t, r, "realm:"+r.Node(), "StoreTampered") {
			if ev.Resource == fmt.Sprintf("StoreRecord::%q", resource) && (reason == "" || ev.Signals["reason"] == reason) {
				found = ev
				return true
			}
		}
		return false
	})
	if found.Outcome != audit.Deny || len(found.Reasons) == 0 {
		t.Fatalf("tamper event %+v: want a deny with reasons", found)
	}
	return found
}

// TestAttackerWithFullNATSGainsNoPower plays an attacker who can read and
// write every stream and bucket of a realm in cluster mode, but holds none
// of its keys: what it forges or puts back is refused, each refusal is
// audited as StoreTampered with its reason, and nothing it wrote changes a
// balance, an owner or a role seen through the API.
func TestAttackerWithFullNATSGainsNoPower(t *testing.T) {
	srv := natstest.RunServer(t)
	r := startRealm(t, Config{Listen: "localhost:0", NATS: []string{srv.ClientURL()}, Node: "realm-a", ScenesDir: marketScenes})
	evil := newAttacker(t, srv.ClientURL())

	boss := newMarketUser(t, r, "boss") // the bootstrap administrator
	ada := newMarketUser(t, r, "ada")
	bossID, adaID := boss.Sess.Avatar["id"].(string), ada.Sess.Avatar["id"].(string)
	mint(t, r, "relics", "vase", ada.Wallet, 0)
	mint(t, r, "gems", "", ada.Wallet, 1000)
	evilKey, _ := crypto.GenerateKey()
	evilWallet := crypto.PubkeyToAddress(evilKey.PublicKey)

	rolesSeen := func(id string) []string {
		t.Helper()
		var page avatarPage
		boss.C.Must("GET", "/v1/avatars", nil, &page)
		for _, a := range page.Avatars {
			if a.ID == id {
				return a.Roles
			}
		}
		return nil
	}
	owned := func(addr string) (gems string, items []string) {
		t.Helper()
		var out struct {
			Items    []assetView   `json:"items"`
			Balances []balanceView `json:"balances"`
		}
		boss.C.Must("GET", "/v1/assets/owners/"+addr, nil, &out)
		for _, b := range out.Balances {
			if b.Collection == "gems" {
				gems = b.Balance
			}
		}
		for _, it := range out.Items {
			items = append(items, it.Collection+"/"+it.Item)
		}
		return gems, items
	}
	ownerOf := func(coll, item string) string {
		t.Helper()
		var a assetView
		boss.C.Must("GET", "/v1/assets/items/"+coll+"/"+item, nil, &a)
		return a.Owner
	}
	adaRoles := rolesSeen(adaID)
	if !slices.Equal(adaRoles, []string{"visitor"}) {
		t.Fatalf("ada's roles = %q, want visitor", adaRoles)
	}

	t.Run("forged session", func(t *testing.T) {
		// A session record for a token of the attacker's choosing, for
		// the administrator.
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		token := "zrs_" + base64.RawURLEncoding.EncodeToString(secret)
		hash := sha256.Sum256(secret)
		id := hex.EncodeToString(hash[:16])
		now := time.Now().UTC()
		rec, _ := json.Marshal(map[string]any{"v": 1, "hash": hash[:], "avatar": bossID, "created": now, "lastSeen": now, "expires": now.Add(time.Hour), "csrf": "x"})
		evil.put("sessions", id, forgedSeal(rec))
		code, _ := boss.C.With(token).Call("GET", "/v1/avatars", nil, nil)
		if code != http.StatusUnauthorized {
			t.Fatalf("forged session answered %d, want 401", code)
		}
		// Without any seal at all: the same.
		evil.put("sessions", id, rec)
		if code, _ := boss.C.With(token).Call("GET", "/v1/avatars", nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("unsealed forged session answered %d, want 401", code)
		}
		tamperAudited(t, r, "sessions/"+id, store.ReasonSealDiffer)
		tamperAudited(t, r, "sessions/"+id, store.ReasonNoSeal)
	})

	t.Run("forged step-up", func(t *testing.T) {
		// With the administrator's stolen token but not its passkey, the
		// attacker writes the step-up proof a role change needs.
		stolen := boss.C
		roles := []string{"visitor", "admin"}
		digest := strings.TrimPrefix(roleDigest(stolen, adaID, roles), "0x")
		key := boss.Sess.Session.ID + "." + digest
		evil.put("stepups", key, forgedSeal([]byte(time.Now().UTC().Format(time.RFC3339Nano))))
		code, p := stolen.Call("PUT", "/v1/avatars/"+adaID+"/roles", map[string]any{"roles": roles}, nil)
		if code != http.StatusForbidden || !strings.Contains(p.Detail, "step-up") {
			t.Fatalf("role change on a forged step-up = %d %q, want 403 asking for a step-up", code, p.Detail)
		}
		tamperAudited(t, r, "stepups/"+key, store.ReasonSealDiffer)
		if got := rolesSeen(adaID); !slices.Equal(got, adaRoles) {
			t.Fatalf("ada's roles after a forged step-up = %q, want %q", got, adaRoles)
		}
	})

	t.Run("rewritten avatar", func(t *testing.T) {
		// The attacker adds admin to ada's stored record, keeping the
		// genuine seal bytes in front of the altered JSON.
		kv := evil.bucket("avatars")
		e, err := kv.Get(context.Background(), adaID)
		if err != nil {
			t.Fatal(err)
		}
		raw := e.Value()
		altered := strings.Replace(string(raw), `"visitor"`, `"visitor","admin"`, 1)
		if altered == string(raw) {
			t.Fatalf("ada's stored record %q holds no roles to rewrite", raw)
		}
		evil.put("avatars", adaID, []byte(altered))
		tamperAuditedAfter := func() bool {
			code, _ := ada.C.Call("GET", "/v1/avatars", nil, nil)
			return code == http.StatusUnauthorized || code == http.StatusForbidden
		}
		// Refused as absent: the avatar reads as gone, so the rewrite
		// gives no role; its sessions stop working until the record is
		// restored (see docs/architecture.md "Records are sealed").
		eventually(t, "ada's rewritten record refused", func() bool {
			return rolesSeen(adaID) == nil && tamperAuditedAfter()
		})
		tamperAudited(t, r, "avatars/"+adaID, store.ReasonSealDiffer)
		code, _ := ada.C.Call("GET", "/v1/avatars", nil, nil)
		if code == http.StatusOK {
			t.Fatal("ada lists avatars, an administrator's right, after the rewrite")
		}
		// Putting the genuine record back (the repair) restores ada as
		// she was: a visitor.
		evil.put("avatars", adaID, raw)
		eventually(t, "ada restored", func() bool { return slices.Equal(rolesSeen(adaID), adaRoles) })
	})

	t.Run("forged ledger credit and owner", func(t *testing.T) {
		credit, _ := json.Marshal(map[string]any{"event": "mint", "balance": 5_000_000, "delta": 5_000_000})
		balanceSubject := "zr.ledger.balance.gems." + strings.ToLower(evilWallet.Hex())
		evil.publish(balanceSubject, credit, nil)
		owner, _ := json.Marshal(map[string]any{"event": "transfer", "owner": evilWallet})
		evil.publish("zr.ledger.asset.relics.vase", owner, nats.Header{store.SealHeader: {"v1.0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}})
		tamperAudited(t, r, "LEDGER/ledger.balance.gems."+strings.ToLower(evilWallet.Hex()), store.ReasonNoSeal)
		tamperAudited(t, r, "LEDGER/ledger.asset.relics.vase", store.ReasonSealDiffer)
		if gems, items := owned(evilWallet.Hex()); gems != "" || len(items) != 0 {
			t.Fatalf("the attacker's wallet holds %q gems and %q", gems, items)
		}
		if got := ownerOf("relics", "vase"); got != ada.Wallet.Hex() {
			t.Fatalf("the vase's owner = %s, want ada's %s", got, ada.Wallet.Hex())
		}
		if gems, _ := owned(ada.Wallet.Hex()); gems != "1000" {
			t.Fatalf("ada's gems = %q, want 1000", gems)
		}
	})

	t.Run("replayed genuine records", func(t *testing.T) {
		// Ada's balance record from before she paid 40 gems, appended
		// again exactly as the realm wrote it.
		stream, err := evil.js.Stream(context.Background(), "ZR_LEDGER")
		if err != nil {
			t.Fatal(err)
		}
		subject := "zr.ledger.balance.gems." + strings.ToLower(ada.Wallet.Hex())
		before, err := stream.GetLastMsgForSubject(context.Background(), subject)
		if err != nil {
			t.Fatal(err)
		}
		pay := ada.SignedTransfer(t, intent("gems", "", 40, ada.Wallet, boss.Wallet, 1, deadlineIn(time.Hour)), ada.Key)
		ada.C.Must("POST", "/v1/assets/transfers", pay, nil)
		if gems, _ := owned(ada.Wallet.Hex()); gems != "960" {
			t.Fatalf("ada's gems after paying 40 = %q, want 960", gems)
		}
		evil.publish(subject, before.Data, nats.Header{store.SealHeader: before.Header.Values(store.SealHeader)})
		tamperAudited(t, r, "LEDGER/ledger.balance.gems."+strings.ToLower(ada.Wallet.Hex()), store.ReasonReplayed)
		if gems, _ := owned(ada.Wallet.Hex()); gems != "960" {
			t.Fatalf("ada's gems after the replay = %q, want 960", gems)
		}

		// A step-up proof the administrator used, put back: refused by
		// the node that used it. The change (ada stays a visitor) is
		// allowed once.
		digest := strings.TrimPrefix(roleDigest(boss.C, adaID, adaRoles), "0x")
		if code, p := boss.C.StepUp(boss.Auth, "0x"+digest); code != http.StatusOK {
			t.Fatalf("step-up = %d %+v", code, p)
		}
		proofKey := boss.Sess.Session.ID + "." + digest
		proof, err := evil.bucket("stepups").Get(context.Background(), proofKey)
		if err != nil {
			t.Fatal(err)
		}
		boss.C.Must("PUT", "/v1/avatars/"+adaID+"/roles", map[string]any{"roles": adaRoles}, nil)
		evil.put("stepups", proofKey, proof.Value())
		if code, p := boss.C.Call("PUT", "/v1/avatars/"+adaID+"/roles", map[string]any{"roles": adaRoles}, nil); code != http.StatusForbidden || !strings.Contains(p.Detail, "already used") {
			t.Fatalf("a used step-up put back = %d %q, want 403 saying it was used", code, p.Detail)
		}
		tamperAudited(t, r, "stepups/"+proofKey, node.ReasonStepUpReplayed)

		// A session signed out, its live record put back: refused by the
		// node that saw the revocation.
		second := newClient(t, r).Login(boss.Auth, "boss")
		sessions := evil.bucket("sessions")
		live, err := sessions.Get(context.Background(), second.Session.ID)
		if err != nil {
			t.Fatal(err)
		}
		boss.C.With(second.Token).Must("POST", "/v1/sessions/logout", nil, nil)
		if _, err := sessions.Put(context.Background(), second.Session.ID, live.Value()); err != nil {
			t.Fatal(err)
		}
		if code, _ := boss.C.With(second.Token).Call("GET", "/v1/avatars", nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("a signed-out session put back answered %d, want 401", code)
		}
		tamperAudited(t, r, "sessions/"+second.Session.ID, "revoked earlier; an older record was put back")
	})

	// Nothing the attacker wrote shows through the API.
	if got := rolesSeen(adaID); !slices.Equal(got, adaRoles) {
		t.Fatalf("ada's roles = %q, want %q", got, adaRoles)
	}
	if got := rolesSeen(bossID); !slices.Contains(got, "admin") {
		t.Fatalf("boss's roles = %q, want admin among them", got)
	}
	if got := ownerOf("relics", "vase"); got != ada.Wallet.Hex() {
		t.Fatalf("the vase's owner = %s, want ada's", got)
	}
}

// TestNodeWithAnotherRecordKeyRefusesToStart: a node given a record key
// other than the cluster's would read every record as forged and write
// records no other node accepts; it refuses to start and names the file.
func TestNodeWithAnotherRecordKeyRefusesToStart(t *testing.T) {
	srv := natstest.RunServer(t)
	urls := []string{srv.ClientURL()}
	startRealm(t, Config{Listen: "localhost:0", NATS: urls, Node: "realm-a"})

	otherKey := filepath.Join(t.TempDir(), "other.key")
	wantRefusedToStart(t, Config{Listen: "localhost:0", NATS: urls, Node: "realm-b", DataDir: t.TempDir(), RecordKeyFile: otherKey},
		keyfile.ErrMismatch, otherKey)
}

// TestDeletedLedgerTailStopsTheNode: the attacker deletes the ledger's
// newest records (the receipt block and the balances of a transfer), so
// that a restarted node would rebuild the balances from before it. The
// node finds the receipt it signed missing (its head file is outside
// NATS) and refuses to start, naming the file that accepts the ledger.
func TestDeletedLedgerTailStopsTheNode(t *testing.T) {
	srv := natstest.RunServer(t)
	cfg := Config{Listen: "localhost:0", NATS: []string{srv.ClientURL()}, Node: "realm-a", ScenesDir: marketScenes, DataDir: t.TempDir()}
	r, stop := runRealm(t, cfg)
	ada, bob := newMarketUser(t, r, "ada"), newMarketUser(t, r, "bob")
	mint(t, r, "gems", "", ada.Wallet, 100)
	pay := ada.SignedTransfer(t, intent("gems", "", 10, ada.Wallet, bob.Wallet, 1, deadlineIn(time.Hour)), ada.Key)
	ada.C.Must("POST", "/v1/assets/transfers", pay, nil)
	stop()

	evil := newAttacker(t, srv.ClientURL())
	ctx := context.Background()
	stream, err := evil.js.Stream(ctx, "ZR_LEDGER")
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{
		"zr.ledger.receipts.realm-a",
		"zr.ledger.balance.gems." + strings.ToLower(ada.Wallet.Hex()),
		"zr.ledger.balance.gems." + strings.ToLower(bob.Wallet.Hex()),
	} {
		m, err := stream.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.DeleteMsg(ctx, m.Sequence); err != nil {
			t.Fatal(err)
		}
	}
	wantRefusedToStart(t, cfg, assets.ErrRolledBack, filepath.Join(cfg.DataDir, market.HeadFile))
}

// TestDeletedBootstrapKeyPromotesNobody: the attacker deletes the
// bootstrap key (and the roster) while the node is down, so that the realm
// looks as if it never had an administrator. The node remembers, outside
// NATS, that the bootstrap is done: the next registration is a visitor.
func TestDeletedBootstrapKeyPromotesNobody(t *testing.T) {
	srv := natstest.RunServer(t)
	cfg := Config{Listen: "localhost:0", NATS: []string{srv.ClientURL()}, Node: "realm-a", DataDir: t.TempDir()}
	r, stop := runRealm(t, cfg)
	boss := newClient(t, r).Register(webauthntest.New(), "boss")
	if got := rolesOf(boss); !slices.Contains(got, "admin") {
		t.Fatalf("boss's roles = %q, want the bootstrap's", got)
	}
	stop()

	evil := newAttacker(t, srv.ClientURL())
	admins := evil.bucket("avatar-admins")
	for _, key := range []string{"bootstrap", "roster"} {
		if err := admins.Purge(context.Background(), key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatal(err)
		}
	}
	r, _ = runRealm(t, cfg)
	if got := rolesOf(newClient(t, r).Register(webauthntest.New(), "mallory")); !slices.Equal(got, []string{"visitor"}) {
		t.Fatalf("a registration after the bootstrap key was deleted has roles %q, want [visitor]", got)
	}
}
