package revocation

import (
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
)

// FuzzDecodeNotice: whatever arrives on the revocation subject (after its
// tag verified, but from a node that may be compromised), decoding returns
// a notice or ErrMalformed, never panics, and a notice it accepts encodes
// again.
func FuzzDecodeNotice(f *testing.F) {
	good, _ := encodeNotice("realm-a", []session.Revocation{{SessionID: "00112233445566778899aabbccddeeff", Avatar: "ada", Reason: "signed out", At: time.Unix(1800000000, 0), Expires: time.Unix(1800003600, 0)}}, nil)
	f.Add(good)
	everywhere, _ := encodeNotice("realm-a", nil, []session.AvatarRevocation{{Avatar: "ada", Reason: "signed out everywhere", At: time.Unix(1800000000, 0)}})
	f.Add(everywhere)
	f.Add([]byte(`{"node":"a","sessions":[],"avatars":[{"avatar":"a","reason":"r","at":"2027-01-01T00:00:00Z"},{"avatar":"b","reason":"r","at":"2027-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"node":"a","sessions":[]}`))
	f.Add([]byte(`{"node":"a","sessions":[{"id":"x"}],"node":"b"}`))
	f.Add([]byte(`{"node":"a","sessions":[{"id":"x","extra":1}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := decodeNotice(data)
		if err != nil {
			return
		}
		if n.Node == "" || len(n.Sessions)+len(n.Avatars) == 0 || len(n.Sessions) > maxNoticeSessions || len(n.Avatars) > maxNoticeAvatars {
			t.Fatalf("accepted %+v", n)
		}
		if _, err := encodeNotice(n.Node, n.revocations(), n.avatarRevocations()); err != nil {
			t.Fatalf("accepted notice does not encode: %v", err)
		}
		_, _ = decodeAck(data)
	})
}
