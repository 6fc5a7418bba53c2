package identity

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/aaguid"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/trust"
)

// Views: the published JSON of avatars, passkeys, sessions and trust. The
// live connection's hello and trust messages carry the same views; the
// realm hands these functions to whatever else publishes them.

// AvatarView is an avatar as its owner sees it: passkeys included, with
// the digests a step-up must be bound to before changing them.
func AvatarView(av *avatar.Avatar) map[string]any {
	passkeys := make([]map[string]any, 0, len(av.Credentials))
	for i := range av.Credentials {
		c := &av.Credentials[i]
		passkeys = append(passkeys, map[string]any{
			"id":                   base64.RawURLEncoding.EncodeToString(c.ID),
			"name":                 c.Name,
			"created":              c.Created,
			"last_used":            c.LastUsed,
			"attestation_format":   c.AttestationFormat,
			"aaguid":               hex.EncodeToString(c.AAGUID),
			"authenticator":        authenticatorName(c.AAGUID),
			"attested":             c.Attested,
			"synced":               c.BackupEligible,
			"cloned":               c.Cloned,
			"device_assurance":     c.DeviceAssurance(),
			"delete_action_digest": edge.DigestHex(DeletePasskeyDigest(c.ID)),
		})
	}
	return map[string]any{
		"id":           av.ID,
		"name":         av.Name,
		"display_name": av.DisplayName,
		"roles":        noStrings(av.Roles),
		"wallets":      noStrings(av.Wallets),
		"created":      av.Created,
		"passkeys":     passkeys,
		// What a step-up must be bound to before this avatar adds a passkey.
		"add_passkey_action_digest": edge.DigestHex(AddPasskeyDigest(av.ID)),
	}
}

// authenticatorName is the passkey's authenticator as people know it, or
// "" when the community list does not name its AAGUID.
func authenticatorName(id []byte) string {
	name, _ := aaguid.Name(id)
	return name
}

// SessionView is a session as its avatar sees it.
func SessionView(s session.Session) map[string]any {
	return map[string]any{"id": s.ID, "created": s.Created, "last_seen": s.LastSeen, "expires": s.Expires, "node": s.Node}
}

// TrustView is a trust assessment with the factors behind it.
func TrustView(a trust.Assessment) map[string]any {
	list := a.Factors()
	factors := make([]map[string]any, 0, len(list))
	for _, f := range list {
		factors = append(factors, map[string]any{"name": f.Name, "value": f.Value, "effect": f.Effect})
	}
	return map[string]any{
		"state":       a.State,
		"score":       a.Score,
		"at":          a.At,
		"factors":     factors,
		"explanation": a.Explain(),
		"context":     a.Context(),
	}
}

// avatarSummary is what an administrator sees of an avatar: no passkeys.
func avatarSummary(a *avatar.Avatar) map[string]any {
	return map[string]any{"id": a.ID, "name": a.Name, "display_name": a.DisplayName, "roles": noStrings(a.Roles), "created": a.Created}
}

// Audit resources of the identity actions.

func AvatarResource(id string) string { return "Avatar::" + quote(id) }

func CredentialResource(id []byte) string {
	return "Passkey::" + quote(base64.RawURLEncoding.EncodeToString(id))
}

func SessionResource(id string) string { return "Session::" + quote(id) }

// ActionAddPasskey is the audited action of adding a passkey to an
// avatar that already has one.
const ActionAddPasskey = "AddPasskey"

// AddPasskeyDigest is the action a step-up must be bound to before a
// passkey is added to an existing avatar:
// SHA-256("zerorealm/add-passkey/v1" || 0x00 || avatar id).
func AddPasskeyDigest(avatarID string) []byte {
	return edge.ActionDigest("zerorealm/add-passkey/v1", []byte(avatarID))
}

// DeletePasskeyDigest is the action a step-up must be bound to before a
// passkey is deleted: SHA-256("zerorealm/delete-passkey/v1" || 0x00 || id).
func DeletePasskeyDigest(credentialID []byte) []byte {
	return edge.ActionDigest("zerorealm/delete-passkey/v1", credentialID)
}

// SetRolesDigest is the action a step-up must be bound to before an
// avatar's roles become roles (normalized, in order):
// SHA-256("zerorealm/set-roles/v1" || 0x00 || avatar id || (0x00 || role)...).
// No role contains 0x00, so the encoding is unambiguous.
func SetRolesDigest(avatarID string, roles []string) []byte {
	h := sha256.New()
	h.Write([]byte("zerorealm/set-roles/v1"))
	h.Write([]byte{0})
	h.Write([]byte(avatarID))
	for _, role := range roles {
		h.Write([]byte{0})
		h.Write([]byte(role))
	}
	return h.Sum(nil)
}
