// Package keyedmac is the one HMAC-SHA256 construction the realm uses to
// authenticate what it reads back from NATS: sealed store records and the
// messages nodes exchange on core NATS.
//
// A Key is derived from the cluster's record key with HKDF-SHA256 and a
// label of its own, so that no two uses (seals, node messages, the key's
// check value) ever share a MAC key and none is an oracle for another.
// Tags bind a domain label, a list of names and the data in an injective
// encoding, so no two inputs hash the same bytes. Keyed HMAC states are
// pooled: setting one up costs two SHA-256 blocks, a Reset one.
//
// It is a leaf: it imports nothing of the project.
package keyedmac
