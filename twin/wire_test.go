package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// jsonGrant and jsonAck are the wire forms as encoding/json writes them,
// which the hand-written encoders must reproduce byte for byte.
func jsonGrant(t testing.TB, sg SignedGrant) []byte {
	if sg.Grant.Approvers == nil {
		sg.Grant.Approvers = []string{}
	}
	if sg.Grant.Delegations == nil {
		sg.Grant.Delegations = []string{}
	}
	b, err := json.Marshal(signedGrantWire{Grant: sg.Grant, Signature: sg.Signature.Hex()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonAck(t testing.TB, sa SignedAck) []byte {
	b, err := json.Marshal(signedAckWire{Ack: sa.Ack, Signature: sa.Signature.Hex()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWireEncodingMatchesEncodingJSON(t *testing.T) {
	s, err := GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	odd := "a\"b\\c<d>&e\u2028\x01é\xff"
	grants := map[string]Grant{
		"plain": {Twin: "press-1", Actuator: "ram", Op: OpSet, ValueMicro: 12_500_000, Nonce: math.MaxUint64,
			NotBefore: 1_700_000_000_000, Expiry: 1_700_000_003_000, Operator: "av_ada", Session: "s1", Approvers: []string{"av_b", "av_c"}},
		"no approvers": {Twin: "press-1", Actuator: "ram", Op: OpStop, ValueMicro: math.MinInt64, Operator: "o", Session: "s"},
		"escapes":      {Twin: odd, Actuator: odd, Op: Op(odd), Operator: odd, Session: odd, Approvers: []string{odd, ""}},
		"agent": {Twin: "press-1", Actuator: "ram", Op: OpSet, ValueMicro: 1, Operator: "ag_01", Owner: odd,
			Delegations: []string{"dg_root", odd}},
	}
	for name, g := range grants {
		t.Run("grant "+name, func(t *testing.T) {
			sg := s.SignGrant(g)
			if got, want := sg.Encode(), jsonGrant(t, sg); !bytes.Equal(got, want) {
				t.Fatalf("SignedGrant.Encode() = %s, want %s", got, want)
			}
		})
	}
	acks := map[string]Ack{
		"done":    {Twin: "press-1", Actuator: "ram", Nonce: 7, Result: ResultDone, ValueMicro: -5, TargetMicro: 1 << 40, At: 99},
		"refused": {Twin: "press-1", Actuator: "ram", Result: ResultRefused, Reason: ReasonReplayed, Detail: "nonce 7 was already used"},
		"escapes": {Twin: odd, Actuator: odd, Result: Result(odd), Reason: Reason(odd), Detail: odd, ValueMicro: math.MinInt64, TargetMicro: math.MaxInt64, At: math.MaxUint64},
	}
	for name, a := range acks {
		t.Run("ack "+name, func(t *testing.T) {
			sa := s.SignAck(a)
			if got, want := sa.Encode(), jsonAck(t, sa); !bytes.Equal(got, want) {
				t.Fatalf("SignedAck.Encode() = %s, want %s", got, want)
			}
		})
	}
}

func FuzzDecodeSignedAck(f *testing.F) {
	s, _ := GenerateSigner()
	good := s.SignAck(Ack{Twin: "press-1", Actuator: "ram", Nonce: 42, Result: ResultDone, ValueMicro: 12_500_000, TargetMicro: 20_000_000, At: 1_700_000_000_000})
	f.Add(good.Encode())
	f.Add(s.SignAck(Ack{Twin: "press-1", Actuator: "ram", Result: ResultRefused, Reason: ReasonReplayed, Detail: "nonce 42 was already used"}).Encode())
	f.Add([]byte(`{"ack":{},"signature":"0x"}`))
	f.Add([]byte(`{}`))
	enc := good.Encode()
	for _, variant := range [][2]string{
		{`{"ack":{`, " {\r\n\"ack\":\n{ "},
		{`"result":"done"`, `"RESULT":"done"`},
		{`"result":"done"`, `"result":"d\u006fne"`},
		{`"reason":""`, `"reason":null`},
		{`"at":1700000000000`, `"at":1700000000000,"at":1`},
		{`"valueMicro":12500000`, `"valueMicro":-0`},
		{`"twin":"press-1"`, `"twin":"press-1","detail":"\ud800"`},
	} {
		f.Add(bytes.Replace(enc, []byte(variant[0]), []byte(variant[1]), 1))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sa, err := DecodeSignedAck(data)
		if err != nil {
			return
		}
		// The decoder is never looser than encoding/json's strict decoding.
		var ref signedAckWire
		if err := decodeStrict(data, &ref); err != nil {
			t.Fatalf("DecodeSignedAck(%q) accepted what encoding/json refuses: %v", data, err)
		}
		if want := jsonAck(t, SignedAck{Ack: ref.Ack, Signature: sa.Signature}); !bytes.Equal(sa.Encode(), want) || !strings.EqualFold(ref.Signature, sa.Signature.Hex()) {
			t.Fatalf("DecodeSignedAck(%q) = %s, encoding/json reads %s", data, sa.Encode(), want)
		}
		enc := sa.Encode()
		if want := jsonAck(t, sa); !bytes.Equal(enc, want) {
			t.Fatalf("Encode() = %s, want %s", enc, want)
		}
		again, err := DecodeSignedAck(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		if again.Ack.Digest() != sa.Ack.Digest() || again.Signature != sa.Signature || again.Ack.Detail != sa.Ack.Detail {
			t.Fatalf("round trip changed the acknowledgement: %+v vs %+v", sa, again)
		}
		_, _ = sa.Signer() // must not panic
	})
}

func TestNoticeDigestMatchesStandardEIP712(t *testing.T) {
	for _, n := range []RevocationNotice{
		{Seq: 1, At: 1_700_000_000_000, Complete: true, Sessions: []string{"s1", "s2"}},
		{Seq: math.MaxUint64, At: 2, Sessions: []string{"s3"}},
		{Seq: 3, At: 4, Complete: true, Sessions: []string{}},
		{Seq: 5, At: 6, Sessions: []string{}, Agents: []string{"dg_1", "ag_2", "av_3"}},
	} {
		sessions := make([]any, len(n.Sessions))
		for i, s := range n.Sessions {
			sessions[i] = s
		}
		agents := make([]any, len(n.Agents))
		for i, s := range n.Agents {
			agents[i] = s
		}
		td := apitypes.TypedData{
			Types: apitypes.Types{
				"EIP712Domain": domainTypes(),
				"RevocationNotice": {
					{Name: "seq", Type: "uint64"}, {Name: "at", Type: "uint64"}, {Name: "complete", Type: "bool"}, {Name: "sessions", Type: "string[]"},
					{Name: "agents", Type: "string[]"},
				},
			},
			PrimaryType: "RevocationNotice",
			Domain:      typedDomain(),
			Message: apitypes.TypedDataMessage{
				"seq": u64String(n.Seq), "at": u64String(n.At), "complete": n.Complete, "sessions": sessions, "agents": agents,
			},
		}
		if got, want := n.Digest(), standardDigest(t, td); got != want {
			t.Errorf("RevocationNotice%+v.Digest() = %s, want %s (go-ethereum apitypes)", n, got, want)
		}
	}
}

// TestStringHashCacheKeepsDigests fills the string hash cache past its
// bound (internal/eip712 keeps 4,096): digests before, during and after
// agree with the standard ones.
func TestStringHashCacheKeepsDigests(t *testing.T) {
	a := Ack{Twin: "press-1", Actuator: "ram", Nonce: 7, Result: ResultDone, At: 99}
	want := standardDigest(t, a.TypedData())
	for i := range 5000 {
		other := a
		other.Reason = Reason(strconv.Itoa(i))
		if i%1000 == 0 {
			if got, want := other.Digest(), standardDigest(t, other.TypedData()); got != want {
				t.Fatalf("Digest() with reason %q = %s, want %s", other.Reason, got, want)
			}
		}
		_ = other.Digest()
		if got := a.Digest(); got != want {
			t.Fatalf("after %d strings, Digest() = %s, want %s", i, got, want)
		}
	}
}

func TestDecodeSignedGrantStrictness(t *testing.T) {
	s, err := GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	good := string(s.SignGrant(Grant{Twin: "press-1", Actuator: "ram", Op: OpSet, ValueMicro: 42, Nonce: 42,
		NotBefore: 1, Expiry: 2, Operator: "av_ada", Session: "s1", Approvers: []string{"av_b"}}).Encode())
	cases := []struct {
		name, old, new string
		accept         bool
	}{
		{"as encoded", "", "", true},
		{"whitespace", `{"grant":{`, " {\n \"grant\" : {\t", true},
		{"escaped character", `"operator":"av_ada"`, `"operator":"av_\u0061da"`, true},
		{"keys in another order", `"twin":"press-1","actuator":"ram"`, `"actuator":"ram","twin":"press-1"`, true},
		{"key in another case", `"twin"`, `"Twin"`, false},
		{"duplicate key", `"nonce":42`, `"nonce":42,"nonce":43`, false},
		{"missing key", `"nonce":42,`, ``, false},
		{"null", `["av_b"]`, `null`, false},
		{"fraction", `"nonce":42`, `"nonce":42.0`, false},
		{"exponent", `"nonce":42`, `"nonce":4.2e1`, false},
		{"leading zero", `"nonce":42`, `"nonce":042`, false},
		{"negative unsigned", `"nonce":42`, `"nonce":-42`, false},
		{"lone surrogate", `"session":"s1"`, `"session":"s\ud800"`, false},
		{"invalid UTF-8", `"session":"s1"`, "\"session\":\"s\xff\"", false},
		{"control character", `"session":"s1"`, "\"session\":\"s\x01\"", false},
		{"unknown key", `"nonce":42`, `"nonce":42,"extra":1`, false},
		{"trailing data", "", " {}", false},
		{"too many approvers", `["av_b"]`, `["a","b","c","d","e","f","g","h","i"]`, false},
		{"largest nonce", `"nonce":42`, `"nonce":18446744073709551615`, true},
		{"nonce past uint64", `"nonce":42`, `"nonce":18446744073709551616`, false},
		{"nonce far past uint64", `"nonce":42`, `"nonce":99999999999999999999`, false},
		{"smallest value", `"valueMicro":42`, `"valueMicro":-9223372036854775808`, true},
		{"largest value", `"valueMicro":42`, `"valueMicro":9223372036854775807`, true},
		{"value past int64", `"valueMicro":42`, `"valueMicro":9223372036854775808`, false},
		{"value below int64", `"valueMicro":42`, `"valueMicro":-9223372036854775809`, false},
		{"negative zero", `"valueMicro":42`, `"valueMicro":-0`, true},
		{"minus alone", `"valueMicro":42`, `"valueMicro":-`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := good + c.new // an empty old appends new
			if c.old != "" {
				if !strings.Contains(good, c.old) {
					t.Fatalf("%q not in %s", c.old, good)
				}
				data = strings.Replace(good, c.old, c.new, 1)
			}
			sg, err := DecodeSignedGrant([]byte(data))
			if c.accept && err != nil {
				t.Fatalf("DecodeSignedGrant(%q) = %v, want accepted", data, err)
			}
			if c.accept {
				var ref signedGrantWire
				if err := decodeStrict([]byte(data), &ref); err != nil {
					t.Fatal(err)
				}
				if sg.Grant.Nonce != ref.Grant.Nonce || sg.Grant.ValueMicro != ref.Grant.ValueMicro {
					t.Fatalf("decoded nonce %d, value %d; encoding/json reads %d, %d", sg.Grant.Nonce, sg.Grant.ValueMicro, ref.Grant.Nonce, ref.Grant.ValueMicro)
				}
			}
			if !c.accept && !errors.Is(err, ErrInvalidGrant) {
				t.Fatalf("DecodeSignedGrant(%q) = %v, want ErrInvalidGrant", data, err)
			}
		})
	}
}

// TestPeerMessagesWithDuplicateMembersOrInvalidUTF8AreRefused: what a gateway
// or a realm node reads from NATS (grants, acknowledgements, telemetry) may
// come from anyone who reaches NATS. A member written twice, even only by
// case, or a byte that is not UTF-8 is refused, never decoded as the last
// value.
func TestPeerMessagesWithDuplicateMembersOrInvalidUTF8AreRefused(t *testing.T) {
	s, err := GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	grant := s.SignGrant(Grant{Twin: "press-1", Actuator: "ram", Op: OpSet, ValueMicro: 1_000_000, Nonce: 1,
		NotBefore: 1_700_000_000_000, Expiry: 1_700_000_003_000, Operator: "av_ada", Session: "s1"}).Encode()
	telemetry := s.SignTelemetry(Telemetry{Twin: "press-1", Actuator: "ram", ValueMicro: 1_000_000, TargetMicro: 1_000_000, Seq: 1}).Encode()
	decoders := map[string]func([]byte) error{
		"grant":     func(b []byte) error { _, err := DecodeSignedGrant(b); return err },
		"telemetry": func(b []byte) error { _, err := DecodeSignedTelemetry(b); return err },
	}
	for _, tc := range []struct {
		name, decoder string
		body          []byte
	}{
		{"grant value twice", "grant", bytes.Replace(grant, []byte(`"valueMicro":1000000`), []byte(`"valueMicro":1000000,"valueMicro":250000000`), 1)},
		{"grant twin not UTF-8", "grant", bytes.Replace(grant, []byte(`"press-1"`), []byte("\"press-\xff\""), 1)},
		{"telemetry value twice by case", "telemetry", bytes.Replace(telemetry, []byte(`"valueMicro":1000000`), []byte(`"valueMicro":1000000,"VALUEMICRO":2`), 1)},
		{"telemetry twin not UTF-8", "telemetry", bytes.Replace(telemetry, []byte(`"press-1"`), []byte("\"press-\xff\""), 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Equal(tc.body, grant) || bytes.Equal(tc.body, telemetry) {
				t.Fatalf("the test did not change the message: %s", tc.body)
			}
			if err := decoders[tc.decoder](tc.body); !errors.Is(err, ErrInvalidGrant) {
				t.Fatalf("decode %s = %v, want ErrInvalidGrant", tc.body, err)
			}
		})
	}
	for name, body := range map[string][]byte{"grant": grant, "telemetry": telemetry} {
		if err := decoders[name](body); err != nil {
			t.Fatalf("genuine %s refused: %v", name, err)
		}
	}
}
