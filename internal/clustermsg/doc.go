// Package clustermsg authenticates the core NATS messages realm nodes act
// on.
//
// Nodes act on core NATS messages of other nodes: presence tells a node
// which zone another node admitted an avatar into, twin commands are
// decided on that zone, and a revocation makes a node refuse a session.
// Whoever can publish on NATS could otherwise claim to be a node. So every
// such message carries, in Header, the sender's time and an HMAC-SHA256
// tag under a key derived from the cluster's record key (HKDF, its own
// label, so the key is never used for two purposes), over the subject,
// the sending node (NodeHeader), the time and the data. A message without
// a valid tag, or older or newer than Window, is dropped by its receiver
// and counted: a replay works only within the window, and a message
// replayed within it repeats what its node said moments ago.
package clustermsg
