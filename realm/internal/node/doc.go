// Package node owns who this realm node is and what it stands on: its
// data directory (locked) and name, its NATS connection (an embedded
// server or a cluster's), the cluster's record key with its check value
// and the reports of sealed records that did not verify, the store sealed
// under that key, its key ring (the secp256k1 key that signs receipts,
// grants and rotations, the checkpoint keys derived from it, and the
// announcement of a new grant key to gateways), the audit log opened as a
// transparency log with its witness and read model, and the registry of
// the nodes that serve the realm (GET /v1/nodes). Node.Start brings them
// up in that order; Node.Close stops them in reverse.
//
// It imports the domains whose keys it holds (assets, twin), the plumbing
// it starts (internal/natsembed, internal/store, internal/audit,
// internal/keyfile, internal/dirlock, internal/clustermsg) and the shared
// realm/internal/edge; never the realm nor another part.
package node
