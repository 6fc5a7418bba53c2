package live

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/avatar"
)

// Notices to every session of an avatar, wherever its realm WebSockets
// are: a node publishes one on <prefix>.live.avatar-notice and every node,
// itself included, pushes it to its own connections of that avatar. A
// notice is signed like every cluster message a node acts on
// (Deps.Cluster); one that does not verify is refused (refuseForged).

// avatarNotice is what travels between nodes: whose connections, and the
// message for them as the WebSocket carries it.
type avatarNotice struct {
	Avatar  string          `json:"avatar"`
	Message json.RawMessage `json:"message"`
}

// passkeyAddedMessage tells the sessions of an avatar that a passkey was
// added to it, so that an owner learns of a passkey they did not add.
type passkeyAddedMessage struct {
	Type    string         `json:"type"` // "passkey-added"
	Passkey map[string]any `json:"passkey"`
	At      time.Time      `json:"at"`
}

func (s *Service) avatarNoticeSubject() string { return s.deps.Prefix + ".live.avatar-notice" }

// subscribeNotices delivers avatar notices to this node's connections.
func (s *Service) subscribeNotices() (*nats.Subscription, error) {
	sub, err := s.deps.NC.Subscribe(s.avatarNoticeSubject(), func(m *nats.Msg) {
		if err := s.deps.Cluster.Verify(m, m.Subject, s.now()); err != nil {
			s.refuseForged(m, "notice", err)
			return
		}
		var n avatarNotice
		if err := json.Unmarshal(m.Data, &n); err != nil || n.Avatar == "" || len(n.Message) == 0 {
			s.log.Warn("live: ignoring a malformed avatar notice")
			return
		}
		s.sockets.pushAvatar(n.Avatar, n.Message)
	})
	if err != nil {
		return nil, fmt.Errorf("realm: live: subscribe to avatar notices: %w", err)
	}
	return sub, nil
}

// noticeAvatar sends msg to every live connection of the avatar, on every
// node. When NATS cannot take it, this node's connections still get it.
func (s *Service) noticeAvatar(avatarID string, msg []byte) {
	data, _ := json.Marshal(avatarNotice{Avatar: avatarID, Message: msg})
	if err := s.publishSigned(s.avatarNoticeSubject(), data); err != nil {
		s.log.Warn("live: could not send an avatar notice to the other nodes", "avatar", avatarID, "err", err)
		s.sockets.pushAvatar(avatarID, msg)
	}
}

// NoticeAvatar sends msg, a realm WebSocket message, to every live
// connection of the avatar on every node.
func (s *Service) NoticeAvatar(avatarID string, msg []byte) { s.noticeAvatar(avatarID, msg) }

// AnnouncePasskeyAdded tells every session of the avatar about its new
// passkey.
func (s *Service) AnnouncePasskeyAdded(avatarID string, cred *avatar.Credential) {
	msg, _ := json.Marshal(passkeyAddedMessage{
		Type: "passkey-added",
		Passkey: map[string]any{
			"id":                 base64.RawURLEncoding.EncodeToString(cred.ID),
			"name":               cred.Name,
			"created":            cred.Created,
			"attestation_format": cred.AttestationFormat,
			"attested":           cred.Attested,
			"synced":             cred.BackupEligible,
		},
		At: s.now().UTC(),
	})
	s.noticeAvatar(avatarID, msg)
}

func (h *sockets) pushAvatar(avatarID string, msg []byte) {
	for _, c := range h.ofAvatar(avatarID) {
		c.push(msg)
	}
}
