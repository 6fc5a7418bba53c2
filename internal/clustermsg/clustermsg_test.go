package clustermsg

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestVerify: a signed message verifies for its subject; any change to the
// data, the subject, the sending node or the key, or a time outside the
// window, does not.
func TestVerify(t *testing.T) {
	key := []byte("the cluster's record key, 32 byte")
	a, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	other, err := New([]byte("another cluster's record key...."))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	signed := func() *nats.Msg {
		m := &nats.Msg{Subject: "zr.sessions.revoked", Data: []byte(`{"x":1}`), Header: nats.Header{NodeHeader: {"realm-a"}}}
		a.Sign(m, m.Subject, now)
		return m
	}
	if err := a.Verify(signed(), "zr.sessions.revoked", now); err != nil {
		t.Fatalf("Verify(signed) = %v", err)
	}
	cases := map[string]func() (*nats.Msg, string, time.Time, *Auth){
		"data changed": func() (*nats.Msg, string, time.Time, *Auth) {
			m := signed()
			m.Data = []byte(`{"x":2}`)
			return m, m.Subject, now, a
		},
		"other subject": func() (*nats.Msg, string, time.Time, *Auth) { return signed(), "zr.presence.heartbeat", now, a },
		"other node": func() (*nats.Msg, string, time.Time, *Auth) {
			m := signed()
			m.Header.Set(NodeHeader, "realm-b")
			return m, m.Subject, now, a
		},
		"other key": func() (*nats.Msg, string, time.Time, *Auth) { return signed(), "zr.sessions.revoked", now, other },
		"too old": func() (*nats.Msg, string, time.Time, *Auth) {
			return signed(), "zr.sessions.revoked", now.Add(Window + time.Second), a
		},
		"from the future": func() (*nats.Msg, string, time.Time, *Auth) {
			return signed(), "zr.sessions.revoked", now.Add(-Window - time.Second), a
		},
		"unsigned": func() (*nats.Msg, string, time.Time, *Auth) {
			return &nats.Msg{Subject: "zr.sessions.revoked", Data: []byte(`{"x":1}`)}, "zr.sessions.revoked", now, a
		},
		"malformed header": func() (*nats.Msg, string, time.Time, *Auth) {
			m := signed()
			m.Header.Set(Header, "12.!!")
			return m, m.Subject, now, a
		},
	}
	for name, c := range cases {
		m, subject, at, auth := c()
		if err := auth.Verify(m, subject, at); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Verify(%s) = %v; want ErrUnauthenticated", name, err)
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil key) succeeded")
	}
}
