// Package node owns who this realm node is: its name, its key ring (the
// secp256k1 key that signs receipts, grants and rotations, and the
// checkpoint keys derived from it), the cluster's record key and its check
// value, the reports of sealed records that did not verify, the audit log
// opened as a transparency log under the node's checkpoint key, and the
// registry of the nodes that serve the realm.
//
// It imports the domains whose keys it holds (assets, twin), the plumbing
// (internal/store, internal/audit, internal/keyfile) and the shared
// realm/internal/edge; never the realm nor another part.
package node
