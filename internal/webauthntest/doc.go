// Package webauthntest is a software WebAuthn authenticator and client for
// tests: it reads the {"publicKey": {...}} options a relying party sends,
// creates P-256 (ES256) credentials with "none" attestation, signs
// assertions, and answers with the JSON that a browser's
// PublicKeyCredential.toJSON() produces. Tests then run the relying party's
// real verification end to end without a browser.
//
// It is deliberately small and honest rather than configurable: what a test
// needs to misbehave (a counter that goes backwards, a copied key, a synced
// passkey, an authenticator that skips user verification) is a knob, and
// everything else follows the specification, so a ceremony that passes
// here passes for the reason it would with a real authenticator.
//
// It is imported only by _test.go files.
package webauthntest
