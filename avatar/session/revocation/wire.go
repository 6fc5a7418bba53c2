package revocation

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/clustercast"
)

// ErrMalformed reports a notice or acknowledgement that does not decode.
var ErrMalformed = errors.New("revocation: malformed message")

const (
	// maxNoticeBytes bounds a notice before it is decoded. One revocation
	// is well under 600 bytes; "sign out everywhere" of an avatar with
	// session.MaxPerAvatar sessions fits.
	maxNoticeBytes = 256 << 10
	// maxNoticeSessions is session.MaxPerAvatar: one notice per call.
	maxNoticeSessions = session.MaxPerAvatar
)

// notice is what a node publishes to the others: the revocations it made,
// of sessions or of every session of an avatar ("sign out everywhere").
type notice struct {
	Node     string          `json:"node"`
	Sessions []revokedWireV1 `json:"sessions"`
	Avatars  []avatarWireV1  `json:"avatars,omitempty"`
}

// avatarWireV1 is one avatar's "sign out everywhere" on the wire: every
// session of the avatar created at or before at ends.
type avatarWireV1 struct {
	Avatar string    `json:"avatar"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// maxNoticeAvatars bounds the avatars of one notice: one per call.
const maxNoticeAvatars = 1

// revokedWireV1 is one revocation on the wire. Times are RFC 3339.
type revokedWireV1 struct {
	ID      string    `json:"id"`
	Avatar  string    `json:"avatar"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
	Expires time.Time `json:"expires"`
}

func encodeNotice(node string, revs []session.Revocation, avatars []session.AvatarRevocation) ([]byte, error) {
	n := notice{Node: node, Sessions: make([]revokedWireV1, len(revs))}
	for i, r := range revs {
		n.Sessions[i] = revokedWireV1{ID: r.SessionID, Avatar: r.Avatar, Reason: r.Reason, At: r.At.UTC(), Expires: r.Expires.UTC()}
	}
	for _, a := range avatars {
		n.Avatars = append(n.Avatars, avatarWireV1{Avatar: a.Avatar, Reason: a.Reason, At: a.At.UTC()})
	}
	b, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("revocation: encode notice: %w", err)
	}
	if len(b) > maxNoticeBytes {
		return nil, fmt.Errorf("revocation: notice of %d bytes, at most %d", len(b), maxNoticeBytes)
	}
	return b, nil
}

// decodeNotice parses a notice. It checks shape only: each revocation's
// content is judged by session.Manager.Deny.
func decodeNotice(data []byte) (notice, error) {
	if len(data) > maxNoticeBytes {
		return notice{}, fmt.Errorf("%w: notice of %d bytes, at most %d", ErrMalformed, len(data), maxNoticeBytes)
	}
	var n notice
	if err := decodeStrict(data, &n); err != nil {
		return notice{}, fmt.Errorf("%w: notice: %w", ErrMalformed, err)
	}
	switch {
	case n.Node == "":
		return notice{}, fmt.Errorf("%w: notice without a node", ErrMalformed)
	case len(n.Sessions) > maxNoticeSessions || len(n.Avatars) > maxNoticeAvatars:
		return notice{}, fmt.Errorf("%w: notice of %d revocations and %d avatars, want at most %d and %d", ErrMalformed, len(n.Sessions), len(n.Avatars), maxNoticeSessions, maxNoticeAvatars)
	case len(n.Sessions) == 0 && len(n.Avatars) == 0:
		return notice{}, fmt.Errorf("%w: notice revokes nothing", ErrMalformed)
	}
	return n, nil
}

func (n notice) revocations() []session.Revocation {
	out := make([]session.Revocation, len(n.Sessions))
	for i, s := range n.Sessions {
		out[i] = session.Revocation{SessionID: s.ID, Avatar: s.Avatar, Reason: s.Reason, At: s.At, Expires: s.Expires}
	}
	return out
}

func (n notice) avatarRevocations() []session.AvatarRevocation {
	var out []session.AvatarRevocation
	for _, a := range n.Avatars {
		out = append(out, session.AvatarRevocation{Avatar: a.Avatar, Reason: a.Reason, At: a.At})
	}
	return out
}

func decodeAck(data []byte) (clustercast.Ack, error) { return clustercast.DecodeAck(data) }

// decodeStrict decodes exactly one JSON value, with valid UTF-8, no member
// twice and no unknown member.
func decodeStrict(data []byte, v any) error { return clustercast.DecodeStrict(data, v) }
