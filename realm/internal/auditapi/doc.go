// Package auditapi is the realm's audit log over HTTP: the decisions a
// page at a time (every event for an audit role, one's own otherwise),
// the verification of every node's chain as a transparency log, the
// signed checkpoints with their witnesses' cosignatures, and RFC 6962
// inclusion and consistency proofs.
//
// It reads the audit log, its witness and its view, which the composition
// root opens and binds before the realm is ready; it writes nothing but
// the record of a refused read.
package auditapi
