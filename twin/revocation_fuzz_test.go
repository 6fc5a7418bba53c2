package twin

import (
	"bytes"
	"testing"
	"time"
)

// The revocation feed, the grant key's rotations and the gateways'
// telemetry reach their readers through NATS, where anyone who reaches it
// may publish: each decoder must refuse what it cannot read and never
// panic, and what it accepts must read back as it was written.

func FuzzDecodeSignedNotice(f *testing.F) {
	s, _ := GenerateSigner()
	good := s.SignNotice(RevocationNotice{Seq: 7, At: 1_700_000_000_000, Complete: true, Sessions: []string{"s1", "s2"}, Agents: []string{"dg_root"}}).Encode()
	f.Add(good)
	f.Add(s.SignNotice(RevocationNotice{Seq: 1}).Encode())
	f.Add([]byte(`{"notice":{},"signature":"0x"}`))
	f.Add(bytes.Replace(good, []byte(`"seq":7`), []byte(`"seq":7,"seq":8`), 1))
	f.Add(bytes.Replace(good, []byte(`"sessions":["s1","s2"]`), []byte(`"sessions":null`), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		sn, err := DecodeSignedNotice(data)
		if err != nil {
			return
		}
		again, err := DecodeSignedNotice(sn.Encode())
		if err != nil || !bytes.Equal(again.Encode(), sn.Encode()) {
			t.Fatalf("DecodeSignedNotice(%q) = %s, which reads back as %s (%v)", data, sn.Encode(), again.Encode(), err)
		}
		if signer, err := sn.Signer(); err == nil {
			if again, _ := again.Signer(); again != signer {
				t.Fatalf("the signer changed through an encoding: %s, then %s", signer, again)
			}
		}
	})
}

func FuzzDecodeSignedRotation(f *testing.F) {
	s, _ := GenerateSigner()
	next, _ := GenerateSigner()
	good := s.SignRotation(next.Address(), time.UnixMilli(1_700_000_000_000)).Encode()
	f.Add(good)
	f.Add([]byte(`{"rotation":{},"signature":"0x"}`))
	f.Add(bytes.Replace(good, []byte(`"at":1700000000000`), []byte(`"at":1700000000001`), 1))
	f.Add(bytes.Replace(good, []byte(`"at":1700000000000`), []byte(`"at":1700000000000,"at":1`), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		sr, err := DecodeSignedRotation(data)
		if err != nil {
			return
		}
		// Accepted means signed by the key it replaces, whatever bytes
		// carried it.
		signer, err := recoverSigner(sr.Rotation.Digest(), sr.Signature)
		if err != nil || signer != sr.Rotation.Previous {
			t.Fatalf("DecodeSignedRotation(%q) accepted a rotation signed by %s (%v), not by its previous key %s", data, signer, err, sr.Rotation.Previous)
		}
		again, err := DecodeSignedRotation(sr.Encode())
		if err != nil || again != sr {
			t.Fatalf("DecodeSignedRotation(%q) = %+v, which reads back as %+v (%v)", data, sr, again, err)
		}
	})
}

func FuzzDecodeSignedTelemetry(f *testing.F) {
	s, _ := GenerateSigner()
	good := s.SignTelemetry(Telemetry{Twin: "press-1", Actuator: "ram", ValueMicro: -12_500_000, TargetMicro: 20_000_000, Seq: 9, At: 1_700_000_000_000}).Encode()
	f.Add(good)
	f.Add([]byte(`{"state":{},"signature":"0x"}`))
	f.Add(bytes.Replace(good, []byte(`"seq":9`), []byte(`"seq":-9`), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := DecodeSignedTelemetry(data)
		if err != nil {
			return
		}
		again, err := DecodeSignedTelemetry(st.Encode())
		if err != nil || again != st {
			t.Fatalf("DecodeSignedTelemetry(%q) = %+v, which reads back as %+v (%v)", data, st, again, err)
		}
	})
}
