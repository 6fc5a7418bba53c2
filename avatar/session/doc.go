// Package session issues, checks and revokes the session tokens an avatar
// holds after a passkey sign-in, and feeds every realm node the revocations
// it must act on by closing live connections.
//
// # Tokens
//
// A token is "zrs_" followed by 32 random bytes in unpadded base64url (47
// characters in all). The prefix lets secret scanners recognise a leaked
// token; the rest is opaque: it carries no avatar or node, so it reveals
// nothing and cannot be forged from public data. Only the token's SHA-256
// hash is stored. The session's public ID is the hex of the hash's first 16
// bytes: it is safe to log, list and revoke by, and it is the record's key,
// but it cannot authenticate, because Authenticate compares the record's
// full hash with the presented token's in constant time. A token that is
// malformed (prefix, length, alphabet, non-canonical encoding) is refused
// before any store access, so garbage sent by scanners costs no I/O.
// Errors never contain a token.
//
// # Layout
//
// Two key-value buckets. "sessions" holds one record per session under its
// ID, so Authenticate is a single read by a key derived from the token.
// "avatar-sessions" holds, under the avatar ID (base64url-encoded to be a
// valid key whatever the avatar package's ID syntax), the IDs and expiry
// times of that avatar's sessions; it is what RevokeAvatar and List walk.
// Keying records "<avatar>.<id>" instead would need the avatar at
// authentication time, that is, inside the token, which must stay opaque;
// listing keys by prefix would scan every session of the realm.
//
// Create writes the index entry first (compare-and-set, pruning expired
// entries) and the record second, so that every session that can
// authenticate is reachable from its avatar's index. A record that is not
// yet written when RevokeAvatar runs is pre-empted with a revoked
// placeholder, so the in-flight Create fails instead of issuing a session
// that "sign out everywhere" missed. An index entry whose record was never
// written is harmless and disappears with its expiry.
//
// Both buckets expire values Lifetime plus a margin after their last write,
// so nothing needs a sweeper, and a revoked record stays readable until the
// session would have expired anyway: every node's watcher and every later
// Authenticate see that it was revoked, and why. All nodes must run with the
// same Lifetime, since it sets the buckets' TTL.
//
// # Expiry
//
// Expires is Created + Lifetime and is never extended. Idle time is measured
// from LastSeen, which Authenticate rewrites (compare-and-set) only when it
// is at least TouchEvery old, so most authentications are one read. The idle
// timeout can therefore bite up to TouchEvery early, never late. A touch that
// loses its compare-and-set to a concurrent revocation reports the
// revocation; a touch that fails for any other reason is logged and the
// authentication, decided on a consistent read, stands.
//
// Touch records use of a session by its public ID, for a connection that
// was authenticated when it opened and is still in use (the realm's live
// WebSocket): it extends the idle time as an authentication does, and
// reports a session that has expired or was revoked.
//
// # Revocations
//
// Revocations streams a Revocation for every record that is revoked and not
// past its lifetime, from any node: those revoked before the call (the
// bucket's current state is replayed first) and every later one. Replaying
// the already revoked ones closes the window between a node checking a
// session and subscribing, and closing an already closed session's
// connections is a no-op, so consumers treat delivery as at least once.
// The watch sees every write to the bucket, touches included, so its cost
// grows with active sessions divided by TouchEvery.
//
// Deny makes a node refuse a session before the store has its revocation
// (package revocation broadcasts it to every node): a deny list checked
// before the store on every Authenticate, AuthenticateCached and Touch,
// whose entries last until the session would have expired and are never
// withdrawn, and whose revocations every Revocations feed delivers too.
// Once a feed sees the stored record, the record decides again. Recall
// finds a session this node authenticated before from its token alone,
// so that a sign-out works while the store cannot be read.
//
// Calls that reach the store are bounded by the store's default timeout
// when their context has no deadline.
package session
