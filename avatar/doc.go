// Package avatar holds the identities of the realm: avatars, their roles and
// linked wallet addresses, their passkey credentials (WebAuthn, through
// go-webauthn) and the durable part of their sessions.
//
// It decides nothing about trust by itself: it records who proved what and
// when, and the trust package turns that evidence into a score.
package avatar
