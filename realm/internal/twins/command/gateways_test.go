package command

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/twin"
)

func gatewayNKey(t testing.TB) string {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	return pub
}

func TestEnrolledGatewaysAreCheckedWhenRead(t *testing.T) {
	nkey := gatewayNKey(t)
	entry := func(twinID, key, addr string) map[string]any {
		return map[string]any{"twin": twinID, "nkey": key, "address": addr}
	}
	const addr = "0x00000000000000000000000000000000000000a1"
	doc := func(entries ...map[string]any) []byte {
		data, _ := json.Marshal(map[string]any{"gateways": entries})
		return data
	}
	got, err := ParseEnrolledGateways(doc(entry("press-1", nkey, addr)))
	if err != nil || len(got) != 1 || got[0].Twin != "press-1" || got[0].NKey != nkey || got[0].Address.Hex() != "0x00000000000000000000000000000000000000A1" {
		t.Fatalf("a valid file = %+v, %v", got, err)
	}
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"not JSON":          {[]byte(`{"gateways": [`), GatewaysFile},
		"bad twin id":       {doc(entry("Press 1!", nkey, addr)), "needs a twin id"},
		"seed, not a key":   {doc(entry("press-1", "SUAFAKESEED", addr)), "public user nkey"},
		"no address":        {doc(entry("press-1", nkey, "0x0000000000000000000000000000000000000000")), "an address"},
		"enrolled twice":    {doc(entry("press-1", nkey, addr), entry("press-1", gatewayNKey(t), addr)), "enrolled twice"},
		"address not hex":   {doc(entry("press-1", nkey, "nope")), GatewaysFile},
		"unknown top level": {[]byte(`{"gateways": {"press-1": {}}}`), GatewaysFile},
	} {
		if got, err := ParseEnrolledGateways(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: = %+v, %v; want an error saying %q", name, got, err, tc.want)
		}
	}
}

func TestNoGatewaysFileIsNoGateways(t *testing.T) {
	dir := t.TempDir()
	if got, err := ReadEnrolledGateways(dir); err != nil || got != nil {
		t.Fatalf("no file = %+v, %v; want none", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, GatewaysFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEnrolledGateways(dir); err == nil {
		t.Fatal("a broken file was read as valid")
	}
}

// FuzzParseEnrolledGateways: any bytes are refused with an error or give
// entries that each name a valid twin, a public user nkey and an address,
// no twin twice; never a panic.
func FuzzParseEnrolledGateways(f *testing.F) {
	f.Add([]byte(`{"gateways":[{"twin":"press-1","nkey":"UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4","address":"0x00000000000000000000000000000000000000a1"}]}`))
	f.Add([]byte(`{"gateways":[]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseEnrolledGateways(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, g := range got {
			if !twin.ValidID(g.Twin) || !nkeys.IsValidPublicUserKey(g.NKey) || g.Address == ([20]byte{}) || seen[g.Twin] {
				t.Fatalf("accepted %+v", g)
			}
			seen[g.Twin] = true
		}
	})
}
