// Package notekey makes the Ed25519 keys of C2SP signed notes
// (golang.org/x/mod/sumdb/note) from a 32-byte seed: the signer key and
// the verifier key that others pin. The realm derives such seeds from its
// key ring (assets.DeriveSeed), one label per role, so that one secret,
// kept and rotated like the receipt key, gives every Ed25519 key a node
// signs notes with.
package notekey
