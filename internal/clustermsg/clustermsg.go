package clustermsg

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/internal/keyedmac"
)

const (
	// Header carries a message's time and tag.
	Header = "Zerorealm-Auth"
	// NodeHeader names the sending node; the tag covers it.
	NodeHeader = "Zerorealm-Node"
	label      = "zerorealm/cluster-messages/v1"
	// Window bounds the clocks' difference between nodes plus a
	// message's delay; heartbeats come every second.
	Window = 10 * time.Second
)

// ErrUnauthenticated reports a message whose tag is missing, does not
// verify, or is outside Window.
var ErrUnauthenticated = errors.New("cluster message not authenticated")

// Auth signs and checks the messages nodes exchange on core NATS. It is
// safe for concurrent use.
type Auth struct {
	key *keyedmac.Key
}

// New derives the cluster message key from the cluster's record key.
func New(recordKey []byte) (*Auth, error) {
	key, err := keyedmac.Derive(recordKey, label)
	if err != nil {
		return nil, fmt.Errorf("clustermsg: derive the cluster message key: %w", err)
	}
	return &Auth{key: key}, nil
}

// tag is the MAC of subject, node, the time and data. Subjects and node
// names hold no 0 byte; the time is 8 bytes, last.
func (a *Auth) tag(subject, node string, ms int64, data []byte) []byte {
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], uint64(ms))
	return a.key.Tag(nil, label, data, subject, node, string(t[:]))
}

// Sign sets msg's auth header for subject (the message's own, or for a
// reply the request's or the reply's).
func (a *Auth) Sign(msg *nats.Msg, subject string, now time.Time) {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	ms := now.UnixMilli()
	msg.Header.Set(Header, strconv.FormatInt(ms, 10)+"."+
		base64.RawURLEncoding.EncodeToString(a.tag(subject, msg.Header.Get(NodeHeader), ms, msg.Data)))
}

// Verify checks msg's auth header for subject at now.
func (a *Auth) Verify(msg *nats.Msg, subject string, now time.Time) error {
	v := msg.Header.Get(Header)
	msText, enc, ok := strings.Cut(v, ".")
	if !ok {
		return fmt.Errorf("%w: no %s header", ErrUnauthenticated, Header)
	}
	ms, err := strconv.ParseInt(msText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed time", ErrUnauthenticated)
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil || !hmac.Equal(got, a.tag(subject, msg.Header.Get(NodeHeader), ms, msg.Data)) {
		return fmt.Errorf("%w: tag does not verify", ErrUnauthenticated)
	}
	if d := now.Sub(time.UnixMilli(ms)); d > Window || d < -Window {
		return fmt.Errorf("%w: sent %v from now, outside %v", ErrUnauthenticated, -d, Window)
	}
	return nil
}
