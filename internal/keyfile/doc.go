// Package keyfile holds the realm's cluster secrets that never enter NATS:
// the key that seals biometric templates and the key that authenticates
// the records the realm reads back from its store. Both live in a file
// (64 hex digits, mode 0600) that every node of a cluster shares, created
// on the first start of the first node; both are checked against a check
// value kept in a bucket, so a node given another key refuses to start
// instead of writing records no other node can read.
//
// The template key rotates (ParseRing, CheckRing): its file may hold
// several keys, the first sealing and the others opening what they sealed
// before, and the check value record names the key the cluster seals with
// and those it retired, so that a node cannot go back to a retired key.
// The record key does not rotate in place.
//
// The check value is an HMAC of a fixed label under the key: it proves
// which key the cluster uses without revealing it, and (each key's users
// derive their working keys with other labels) it is no oracle for them.
package keyfile
