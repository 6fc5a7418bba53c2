// Package peerbackground exchanges biometric background statistics with
// other realms this realm trusts (docs/biometrics.md, "Background
// statistics from other realms").
//
// A realm's biometric verifier whitens motion by the spread of people it
// knows: the more people, the better it tells one from another. Realms
// can pool that knowledge without pooling anyone's template. Each node
// serves the sums of its own enrolled people's statistics (counts, sums
// and scatter, biometrics.Engine.ShareBackground, from at least k people)
// to the nodes of realms it names as readers, and fetches the same from
// the realms it names as peers; a peer's statistics join its whitening
// (biometrics.Engine.SetPeerBackground), never its cohort.
//
// Both directions are C2SP signed notes (golang.org/x/mod/sumdb/note),
// signed with an Ed25519 key each node derives from its key ring
// (assets.BackgroundKeyLabel) and that the other realm pins: a request
// names the realm asked, the time and a nonce; the answer names the
// reader, echoes the nonce and carries the statistics. Nothing is taken
// on trust from the network: an unknown or bad signature, another realm's
// name, a stale time or a nonce seen before is refused with its reason,
// and what a refused fetch would have brought changes nothing.
package peerbackground
