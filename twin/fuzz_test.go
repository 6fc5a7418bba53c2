package twin

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzParseCommandRequest(f *testing.F) {
	for _, s := range []string{
		`{"op":"set","value":12.5,"reason":"align the die","zone":"control-room"}`,
		`{"op":"stop"}`,
		`{"op":"set","value":-170}`,
		`{"op":"set","value":1e308}`,
		`{"op":"set","value":1,"extra":1}`,
		`not json`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseCommandRequest(data)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("ParseCommandRequest(%q) = %v, want a Refusal", data, err)
			}
			return
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("accepted request %+v fails Validate: %v", req, err)
		}
		if _, err := NewCommand("press-1", "ram", "av", "k", req); err != nil {
			t.Fatalf("accepted request %+v makes no command: %v", req, err)
		}
	})
}

func FuzzDecodeSignedGrant(f *testing.F) {
	s, _ := GenerateSigner()
	v := 12.5
	c, _ := NewCommand("press-1", "ram", "av_ada", "k1", CommandRequest{Op: OpSet, Value: &v})
	g := Grant{Twin: c.Twin, Actuator: c.Actuator, Op: c.Op, ValueMicro: c.ValueMicro, Command: c.Hash(), Nonce: 42,
		NotBefore: 1_700_000_000_000, Expiry: 1_700_000_003_000, Operator: "av_ada", Session: "s1", Approvers: []string{"av_b"}}
	good := s.SignGrant(g).Encode()
	f.Add(good)
	byAgent := g
	byAgent.Operator, byAgent.Session, byAgent.Approvers, byAgent.Owner = "ag_01", "", nil, "av_ada"
	byAgent.Delegations = []string{"dg_root", "dg_leaf"}
	f.Add(s.SignGrant(byAgent).Encode())
	f.Add(bytes.Replace(good, []byte(`"valueMicro":12500000`), []byte(`"valueMicro":-1`), 1))
	f.Add([]byte(`{"grant":{},"signature":"0x"}`))
	f.Add([]byte(`{}`))
	for _, variant := range [][2]string{
		{`{"grant":{`, " {\n \"grant\" : {\t"},              // whitespace
		{`"twin":"press-1"`, `"Twin":"press-1"`},            // case
		{`"operator":"av_ada"`, `"operator":"av_\u0061da"`}, // escape
		{`"approvers":["av_b"]`, `"approvers":null`},
		{`"nonce":42`, `"nonce":42,"nonce":43`},
		{`"nonce":42`, `"nonce":4.2e1`},
		{`"session":"s1"`, `"session":"s\ud83d\ude00"`},
	} {
		f.Add(bytes.Replace(good, []byte(variant[0]), []byte(variant[1]), 1))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sg, err := DecodeSignedGrant(data)
		if err != nil {
			return
		}
		// The decoder is never looser than encoding/json's strict decoding.
		var ref signedGrantWire
		if err := decodeStrict(data, &ref); err != nil {
			t.Fatalf("DecodeSignedGrant(%q) accepted what encoding/json refuses: %v", data, err)
		}
		if ref.Grant.Approvers == nil {
			ref.Grant.Approvers = []string{}
		}
		if want := jsonGrant(t, SignedGrant{Grant: ref.Grant, Signature: sg.Signature}); !bytes.Equal(sg.Encode(), want) || ref.Signature != sg.Signature.Hex() && !strings.EqualFold(ref.Signature, sg.Signature.Hex()) {
			t.Fatalf("DecodeSignedGrant(%q) = %s, encoding/json reads %s", data, sg.Encode(), want)
		}
		// Whatever decodes re-encodes, as encoding/json would, to something
		// that decodes the same.
		if enc, want := sg.Encode(), jsonGrant(t, sg); !bytes.Equal(enc, want) {
			t.Fatalf("Encode() = %s, want %s", enc, want)
		}
		again, err := DecodeSignedGrant(sg.Encode())
		if err != nil {
			t.Fatalf("re-decoding %s: %v", sg.Encode(), err)
		}
		if again.Grant.Digest() != sg.Grant.Digest() || again.Signature != sg.Signature {
			t.Fatalf("round trip changed the grant: %+v vs %+v", sg, again)
		}
		_, _ = sg.Signer() // must not panic
	})
}
