package realm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/avatar"
)

// Notices to every session of an avatar, wherever its realm WebSockets
// are: a node publishes one on <prefix>.live.avatar-notice and every node,
// itself included, pushes it to its own connections of that avatar.

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

func (r *Realm) avatarNoticeSubject() string { return r.cfg.Prefix + ".live.avatar-notice" }

// startLiveNotices delivers avatar notices to this node's connections
// until bg ends.
func (r *Realm) startLiveNotices(bg context.Context) error {
	sub, err := r.nc.Subscribe(r.avatarNoticeSubject(), func(m *nats.Msg) {
		var n avatarNotice
		if err := json.Unmarshal(m.Data, &n); err != nil || n.Avatar == "" || len(n.Message) == 0 {
			r.log.Warn("live: ignoring a malformed avatar notice")
			return
		}
		r.live.pushAvatar(n.Avatar, n.Message)
	})
	if err != nil {
		return fmt.Errorf("realm: live: subscribe to avatar notices: %w", err)
	}
	r.unsubscribeWhenDone(bg, sub)
	return nil
}

// noticeAvatar sends msg to every live connection of the avatar, on every
// node. When NATS cannot take it, this node's connections still get it.
func (r *Realm) noticeAvatar(avatarID string, msg []byte) {
	data, _ := json.Marshal(avatarNotice{Avatar: avatarID, Message: msg})
	if err := r.nc.Publish(r.avatarNoticeSubject(), data); err != nil {
		r.log.Warn("live: could not send an avatar notice to the other nodes", "avatar", avatarID, "err", err)
		r.live.pushAvatar(avatarID, msg)
	}
}

// announcePasskeyAdded tells every session of the avatar about its new
// passkey.
func (r *Realm) announcePasskeyAdded(avatarID string, cred *avatar.Credential) {
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
		At: time.Now().UTC(),
	})
	r.noticeAvatar(avatarID, msg)
}

func (h *liveHub) pushAvatar(avatarID string, msg []byte) {
	for _, c := range h.ofAvatar(avatarID) {
		c.push(msg)
	}
}
