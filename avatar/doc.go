// Package avatar holds the identities of the realm: avatars, their roles and
// linked wallet addresses, and their passkey credentials, with the WebAuthn
// ceremonies (through go-webauthn) that register and use them: registration,
// sign-in (discoverable or by name) and step-up bound to one action.
//
// It decides nothing about trust by itself: it records who proved what and
// when (user verification, backup state, attestation, a counter that went
// backwards), and the trust package turns that evidence into a score. It
// speaks JSON bytes in and out, exactly the WebAuthn options and
// PublicKeyCredential.toJSON() shapes browsers use, and leaves HTTP to the
// realm.
//
// # State
//
// Everything lives in the store's key-value buckets, written with
// compare-and-set, so any number of realm nodes share it without locks:
// "avatars" (id -> avatar record), "avatar-names" and "credentials"
// (name or credential id -> avatar id; created, never overwritten, which
// makes names and credential ids unique across nodes), and "ceremonies"
// (begun ceremonies, with a TTL), and "avatar-admins": the bootstrap key
// (created by the one registration that makes the first administrator,
// when Config.BootstrapRoles is set) and the roster of administrators that
// ChangeRoles consults, with compare-and-set, before it takes the admin
// role from anyone. A ceremony is single-use: finishing
// deletes it at the revision read, so of two racing finishes one wins.
// Sign counts are updated by re-reading and retrying on conflict, so no
// update is lost; see counterLog for how concurrent sign-ins are told
// apart from a cloned authenticator.
//
// # Cached reads
//
// Request paths that look the avatar up on every call use GetCached: a
// per-node cache, kept only while CacheReads follows the avatars bucket's
// change feed, which forgets an avatar as soon as any node changes it. It
// fails closed: while the feed is lost (connection down) or behind, or
// when no feed runs, GetCached reads the bucket like Get; and no entry is
// served for longer than CacheFor.
package avatar
