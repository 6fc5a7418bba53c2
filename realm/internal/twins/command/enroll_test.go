package command

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/scenes"
)

func TestEnrollReplacesATwinsGateway(t *testing.T) {
	dir := t.TempDir()
	cat, err := scenes.LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	realmKeys := []common.Address{common.HexToAddress("0x00000000000000000000000000000000000000b2")}
	keys := func() ([]common.Address, error) { return realmKeys, nil }
	if _, err := Enroll(dir, cat, "zr", "press-9", "", keys); err == nil {
		t.Fatal("a twin the scenes do not have was enrolled")
	}
	if _, err := os.Stat(filepath.Join(dir, GatewaysFile)); !os.IsNotExist(err) {
		t.Fatalf("a refused enrolment wrote %s (%v)", GatewaysFile, err)
	}
	first, err := Enroll(dir, cat, "zr", "press-1", "nats://gw.example:4222", keys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Enroll(dir, cat, "zr", "conveyor-1", "", keys); err != nil {
		t.Fatal(err)
	}
	second, err := Enroll(dir, cat, "zr", "press-1", "", keys)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, GatewaysFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want 0600", GatewaysFile, err, info.Mode().Perm())
	}
	enrolled, err := ReadEnrolledGateways(dir)
	if err != nil || len(enrolled) != 2 {
		t.Fatalf("enrolled = %+v, %v; want press-1 once and conveyor-1", enrolled, err)
	}
	kp, err := nkeys.FromSeed([]byte(second.NKeySeed))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	key, err := crypto.HexToECDSA(second.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range enrolled {
		if e.Twin == "press-1" && (e.NKey != pub || e.Address != crypto.PubkeyToAddress(key.PublicKey)) {
			t.Fatalf("press-1 is enrolled as %+v, want the second gateway's keys", e)
		}
	}
	if first.NKeySeed == second.NKeySeed || len(second.Actuators) != 2 || second.RealmKeys[0] != realmKeys[0] || first.NATSURL != "nats://gw.example:4222" {
		t.Fatalf("credentials %+v, want fresh keys, the press's 2 actuators and the realm keys", second)
	}
}
