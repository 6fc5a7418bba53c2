package twin

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// standardDigest hashes typed data with go-ethereum's generic EIP-712
// code, after a JSON round trip, as a wallet receiving it would.
func standardDigest(t *testing.T, td apitypes.TypedData) common.Hash {
	t.Helper()
	raw, err := json.Marshal(td)
	if err != nil {
		t.Fatal(err)
	}
	var back apitypes.TypedData
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	h, _, err := apitypes.TypedDataAndHash(back)
	if err != nil {
		t.Fatalf("TypedDataAndHash(%s): %v", raw, err)
	}
	return common.BytesToHash(h)
}

func TestDigestsMatchStandardEIP712(t *testing.T) {
	v := -12.345678
	c, err := NewCommand("press-1", "ram", "av_ada", "key-1", CommandRequest{Op: OpSet, Value: &v})
	if err != nil {
		t.Fatal(err)
	}
	g := Grant{Twin: "press-1", Actuator: "ram", Op: OpSet, ValueMicro: c.ValueMicro, Command: c.Hash(), Nonce: math.MaxUint64,
		NotBefore: 1_700_000_000_000, Expiry: 1_700_000_003_000, Operator: "av_ada", Session: "s1", Approvers: []string{"av_b", "av_c"}}
	noApprovers := g
	noApprovers.Approvers = []string{}
	byAgent := noApprovers
	byAgent.Operator, byAgent.Session, byAgent.Owner = "ag_0123", "", "av_ada"
	byAgent.Delegations = []string{"dg_root", "dg_leaf"}
	a := Ack{Twin: "press-1", Actuator: "ram", Command: c.Hash(), Nonce: 7, Result: ResultRefused, Reason: ReasonReplayed, ValueMicro: -5, TargetMicro: 1 << 40, At: 99}
	cases := []struct {
		name string
		got  common.Hash
		td   apitypes.TypedData
	}{
		{"command", c.Hash(), c.TypedData()},
		{"grant", g.Digest(), g.TypedData()},
		{"grant without approvers", noApprovers.Digest(), noApprovers.TypedData()},
		{"grant of an agent", byAgent.Digest(), byAgent.TypedData()},
		{"ack", a.Digest(), a.TypedData()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if want := standardDigest(t, tc.td); tc.got != want {
				t.Fatalf("Digest() = %s, want %s (go-ethereum apitypes)", tc.got, want)
			}
		})
	}
}

func TestSignaturesRecoverTheSigner(t *testing.T) {
	s, err := GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	g := Grant{Twin: "press-1", Actuator: "ram", Op: OpSet, NotBefore: 1, Expiry: 2, Operator: "o", Session: "s"}
	sg := s.SignGrant(g)
	if v := sg.Signature[64]; v != 27 && v != 28 {
		t.Fatalf("v = %d, want 27 or 28", v)
	}
	back, err := DecodeSignedGrant(sg.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if signer, err := back.Signer(); err != nil || signer != s.Address() {
		t.Fatalf("Signer() = %s, %v; want %s", signer, err, s.Address())
	}
	// The standard recovery of go-ethereum agrees.
	raw := sg.Signature
	raw[64] -= 27
	pub, err := crypto.SigToPub(g.Digest().Bytes(), raw[:])
	if err != nil || crypto.PubkeyToAddress(*pub) != s.Address() {
		t.Fatalf("crypto.SigToPub = %v, want %s", err, s.Address())
	}
	// A high-s twin of a valid signature is refused.
	high := sg
	n := crypto.S256().Params().N
	sv := new(big.Int).SetBytes(high.Signature[32:64])
	sv.Sub(n, sv)
	sv.FillBytes(high.Signature[32:64])
	high.Signature[64] ^= 1 // 27 <-> 28
	if _, err := high.Signer(); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("high-s signature: Signer() = %v, want ErrInvalidGrant", err)
	}
}

func TestParseCommandRequest(t *testing.T) {
	cases := []struct {
		body string
		want Reason // "" = accepted
	}{
		{`{"op":"set","value":12.5}`, ""},
		{`{"op":"set","value":-3,"reason":"align the die","zone":"control-room"}`, ""},
		{`{"op":"stop"}`, ""},
		{`{"op":"set"}`, ReasonMalformed},
		{`{"op":"stop","value":1}`, ReasonMalformed},
		{`{"op":"jump","value":1}`, ReasonMalformed},
		{`{"value":1}`, ReasonMalformed},
		{`{"op":"set","value":"NaN"}`, ReasonMalformed},
		{`{"op":"set","value":1e999}`, ReasonMalformed},
		{`{"op":"set","value":1e13}`, ReasonOutOfRange},
		{`{"op":"set","value":1,"extra":true}`, ReasonMalformed},
		{`{"op":"set","value":1}{"op":"set","value":2}`, ReasonMalformed},
		{`{"op":"set","value":1,"reason":"bell\u0007"}`, ReasonMalformed},
		{`{"op":"set","value":1,"zone":"Control Room"}`, ReasonMalformed},
		{`[]`, ReasonMalformed},
		{``, ReasonMalformed},
		{`{"op":"set","value":1,"reason":"` + strings.Repeat("x", MaxCommandBytes) + `"}`, ReasonMalformed},
	}
	for _, c := range cases {
		t.Run(c.body[:min(len(c.body), 40)], func(t *testing.T) {
			_, err := ParseCommandRequest([]byte(c.body))
			if got := ReasonOf(err); got != c.want {
				t.Fatalf("ParseCommandRequest(%q) reason = %q (%v), want %q", c.body, got, err, c.want)
			}
			if c.want != "" && !errors.Is(err, ErrInvalidCommand) && !errors.Is(err, ErrEnvelope) {
				t.Fatalf("ParseCommandRequest(%q) = %v, want a category sentinel", c.body, err)
			}
		})
	}
	if _, err := NewCommand("press-1", "ram", "av", "bad key!", CommandRequest{Op: OpStop}); ReasonOf(err) != ReasonMalformed {
		t.Errorf("NewCommand with a bad idempotency key = %v, want malformed", err)
	}
}

func TestCommandHashBindsEveryField(t *testing.T) {
	v := 10.0
	base, _ := NewCommand("press-1", "ram", "av_a", "k", CommandRequest{Op: OpSet, Value: &v})
	seen := map[common.Hash]string{base.Hash(): "base"}
	variants := map[string]Command{}
	for name, mut := range map[string]func(*Command){
		"twin":     func(c *Command) { c.Twin = "press-2" },
		"actuator": func(c *Command) { c.Actuator = "pressure" },
		"op":       func(c *Command) { c.Op = OpStop },
		"value":    func(c *Command) { c.ValueMicro++ },
		"operator": func(c *Command) { c.Operator = "av_b" },
		"key":      func(c *Command) { c.Key = "k2" },
	} {
		c := base
		mut(&c)
		variants[name] = c
	}
	for name, c := range variants {
		if prev, dup := seen[c.Hash()]; dup {
			t.Errorf("changing %s gives the same hash as %s", name, prev)
		}
		seen[c.Hash()] = name
	}
}

func TestGuard(t *testing.T) {
	reg, err := NewRegistry([]Twin{{ID: "press-1", Actuators: []Actuator{
		{ID: "ram", Unit: "mm", Min: 0, Max: 400, MaxRate: 50, Risk: RiskHigh},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	g, err := NewGuard(reg, GuardConfig{PerOperator: Rate{PerSecond: 1, Burst: 2}, PerActuator: Rate{PerSecond: 100, Burst: 100}, Horizon: 2 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	cmd := func(twinID, act string, v float64) Command {
		return Command{Twin: twinID, Actuator: act, Op: OpSet, ValueMicro: ToMicro(v), Operator: "av", Key: "k"}
	}
	reg.SetState("press-1", "ram", State{Value: 100, Seq: 1})
	cases := []struct {
		name string
		c    Command
		want Reason
	}{
		{"unknown twin", cmd("press-9", "ram", 1), ReasonUnknownTwin},
		{"unknown actuator", cmd("press-1", "arm", 1), ReasonUnknownActuator},
		{"below range", cmd("press-1", "ram", -1), ReasonOutOfRange},
		{"above range", cmd("press-1", "ram", 400.5), ReasonOutOfRange},
		{"too far from the current state", cmd("press-1", "ram", 201), ReasonRateOfChange},
		{"within reach", cmd("press-1", "ram", 200), ""},
		{"second within the burst", cmd("press-1", "ram", 150), ""},
		{"third is over the operator's rate", cmd("press-1", "ram", 150), ReasonOperatorRate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := g.Check(c.c)
			if got := ReasonOf(err); got != c.want {
				t.Fatalf("Check(%+v) = %v, want reason %q", c.c, err, c.want)
			}
		})
	}
	now = now.Add(time.Second)
	if _, _, err := g.Check(cmd("press-1", "ram", 150)); err != nil {
		t.Fatalf("Check after a second = %v, want a refilled token", err)
	}
}

func TestKeyFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "twin-grant-key.json")
	a, err := LoadOrCreateKeyFile(path, "pass")
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateKeyFile(path, "pass")
	if err != nil || b.Address() != a.Address() {
		t.Fatalf("reloaded key = %v, %v; want %s", b, err, a.Address())
	}
	if _, err := LoadOrCreateKeyFile(path, "wrong"); err == nil {
		t.Fatal("key file opened with the wrong passphrase")
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", info.Mode(), err)
	}
	var doc map[string]any
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &doc); err != nil || doc["version"] != float64(3) {
		t.Fatalf("key file = %s, want a keystore v3 document", data)
	}
}
