package realm

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

// Nodes act on core NATS messages of other nodes: presence tells a node
// which zone another node admitted an avatar into, and twin commands are
// decided on that zone. Whoever can publish on NATS could otherwise claim
// to be a node. So every such message carries, in clusterAuthHeader, the
// sender's time and an HMAC-SHA256 tag under a key derived from the
// cluster's record key (HKDF, its own label, so the key is never used for
// two purposes), over the subject, the sending node header, the time and
// the data. A message without a valid tag, or older or newer than
// clusterAuthWindow, is dropped and counted: a replay works only within
// the window, and a delta replayed within it repeats what its node said
// moments ago.

const (
	clusterAuthHeader = "Zerorealm-Auth"
	clusterAuthLabel  = "zerorealm/cluster-messages/v1"
	// clusterAuthWindow bounds the clocks' difference between nodes plus
	// a message's delay; heartbeats come every second.
	clusterAuthWindow = 10 * time.Second
)

var errClusterAuth = errors.New("cluster message not authenticated")

// clusterAuth signs and checks the messages nodes exchange on core NATS.
type clusterAuth struct {
	key *keyedmac.Key
}

func newClusterAuth(recordKey []byte) (*clusterAuth, error) {
	key, err := keyedmac.Derive(recordKey, clusterAuthLabel)
	if err != nil {
		return nil, fmt.Errorf("realm: derive the cluster message key: %w", err)
	}
	return &clusterAuth{key: key}, nil
}

// tag is the MAC of subject, node, the time and data. Subjects and node
// names hold no 0 byte; the time is 8 bytes, last.
func (a *clusterAuth) tag(subject, node string, ms int64, data []byte) []byte {
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], uint64(ms))
	return a.key.Tag(nil, clusterAuthLabel, data, subject, node, string(t[:]))
}

// sign sets msg's auth header for subject (the message's own, or for a
// reply the request's).
func (a *clusterAuth) sign(msg *nats.Msg, subject string, now time.Time) {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	ms := now.UnixMilli()
	msg.Header.Set(clusterAuthHeader, strconv.FormatInt(ms, 10)+"."+
		base64.RawURLEncoding.EncodeToString(a.tag(subject, msg.Header.Get(nodeHeader), ms, msg.Data)))
}

// verify checks msg's auth header for subject at now.
func (a *clusterAuth) verify(msg *nats.Msg, subject string, now time.Time) error {
	v := msg.Header.Get(clusterAuthHeader)
	msText, enc, ok := strings.Cut(v, ".")
	if !ok {
		return fmt.Errorf("%w: no %s header", errClusterAuth, clusterAuthHeader)
	}
	ms, err := strconv.ParseInt(msText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed time", errClusterAuth)
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil || !hmac.Equal(got, a.tag(subject, msg.Header.Get(nodeHeader), ms, msg.Data)) {
		return fmt.Errorf("%w: tag does not verify", errClusterAuth)
	}
	if d := now.Sub(time.UnixMilli(ms)); d > clusterAuthWindow || d < -clusterAuthWindow {
		return fmt.Errorf("%w: sent %v from now, outside %v", errClusterAuth, -d, clusterAuthWindow)
	}
	return nil
}
