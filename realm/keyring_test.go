package realm

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/realm/internal/node"
	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

func ringAddresses(t *testing.T, dataDir string) (all []common.Address, active common.Address) {
	t.Helper()
	ring, err := assets.OpenKeyRing(filepath.Join(dataDir, "keys"), assets.DevPassphrase, keystore.LightScryptN)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ring.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		all = append(all, k.Address)
		if k.Active {
			active = k.Address
		}
	}
	return all, active
}

// TestLegacyGrantKeyMovesIntoTheRing starts nodes whose data directory
// holds the grant key of an earlier version: it is imported into the key
// ring and its file removed; on a node with no ring yet it becomes the
// ring's key, signing receipts and grants under the address gateways
// pinned; on a node whose ring has a key, that key signs and the old
// grant key, kept retired, announces it to the gateways that pinned it.
func TestLegacyGrantKeyMovesIntoTheRing(t *testing.T) {
	t.Run("empty ring", func(t *testing.T) {
		data := t.TempDir()
		legacy, err := twin.LoadOrCreateKeyFile(filepath.Join(data, TwinKeyFile), "")
		if err != nil {
			t.Fatal(err)
		}
		creds, err := node.GrantKeys(data)
		if err != nil || len(creds) != 1 || creds[0] != legacy.Address() {
			t.Fatalf("grant keys to pin before the first start = %v (%v), want the legacy key", creds, err)
		}
		r := startRealm(t, Config{DataDir: data})
		if got := r.twins.GrantKey(); got != legacy.Address() {
			t.Fatalf("grant key = %s, want the imported %s", got.Hex(), legacy.Address().Hex())
		}
		if got := r.market.Ledger().Signer(); got != legacy.Address() {
			t.Fatalf("receipt key = %s, want the same key as grants, %s", got.Hex(), legacy.Address().Hex())
		}
		if _, err := os.Stat(filepath.Join(data, TwinKeyFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still exists after the import (%v)", TwinKeyFile, err)
		}
		all, active := ringAddresses(t, data)
		if len(all) != 1 || active != legacy.Address() {
			t.Fatalf("ring = %v active %s, want only the imported key, active", all, active.Hex())
		}
	})

	t.Run("ring with a key", func(t *testing.T) {
		data := t.TempDir()
		ring, err := assets.OpenKeyRing(filepath.Join(data, "keys"), assets.DevPassphrase, keystore.LightScryptN)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ring.Active(); err != nil {
			t.Fatal(err)
		}
		_, receiptKey := ringAddresses(t, data)
		legacy, err := twin.LoadOrCreateKeyFile(filepath.Join(data, TwinKeyFile), "")
		if err != nil {
			t.Fatal(err)
		}
		creds, err := node.GrantKeys(data)
		if err != nil || !slices.Contains(creds, legacy.Address()) || !slices.Contains(creds, receiptKey) {
			t.Fatalf("grant keys to pin = %v (%v), want the legacy and the ring's key", creds, err)
		}
		r := startRealm(t, Config{DataDir: data})
		if got := r.twins.GrantKey(); got != receiptKey {
			t.Fatalf("grant key = %s, want the ring's %s", got.Hex(), receiptKey.Hex())
		}
		all, active := ringAddresses(t, data)
		if len(all) != 2 || active != receiptKey || !slices.Contains(all, legacy.Address()) {
			t.Fatalf("ring = %v active %s, want the ring's key active and the legacy key kept", all, active.Hex())
		}
		// A gateway that pinned the legacy key follows the announcement.
		sub, err := r.nc.SubscribeSync(twin.KeySubject(r.cfg.Prefix))
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		var m *nats.Msg
		if m, err = sub.NextMsg(30 * time.Second); err != nil {
			t.Fatalf("no grant key announcement: %v", err)
		}
		sr, err := twin.DecodeSignedRotation(m.Data)
		if err != nil || sr.Rotation.Previous != legacy.Address() || sr.Rotation.Next != receiptKey {
			t.Fatalf("announcement = %+v (%v), want %s -> %s", sr.Rotation, err, legacy.Address().Hex(), receiptKey.Hex())
		}
		ack, _ := twin.GenerateSigner()
		pinnedLegacy, err := gateway.New(gateway.Config{Twin: "press-1", Actuators: []twin.Actuator{{ID: "ram", Unit: "mm", Max: 100, MaxRate: 10, Risk: twin.RiskLow}},
			RealmKeys: []common.Address{legacy.Address()}, Signer: ack})
		if err != nil {
			t.Fatal(err)
		}
		if err := pinnedLegacy.HandleRotation(m.Data); err != nil {
			t.Fatalf("a gateway that pinned the legacy key refuses the announcement: %v", err)
		}
		stranger, _ := twin.GenerateSigner()
		pinnedOther, err := gateway.New(gateway.Config{Twin: "press-1", Actuators: []twin.Actuator{{ID: "ram", Unit: "mm", Max: 100, MaxRate: 10, Risk: twin.RiskLow}},
			RealmKeys: []common.Address{stranger.Address()}, Signer: ack})
		if err != nil {
			t.Fatal(err)
		}
		if err := pinnedOther.HandleRotation(m.Data); err == nil {
			t.Fatal("a gateway that never trusted the legacy key accepted its announcement")
		}
	})
}
