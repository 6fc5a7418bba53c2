// Package natsembed gives the realm its NATS connection, in either of the two
// modes the architecture allows: an embedded single-node nats-server with
// JetStream on a file store under the data directory (the default, so that
// one process is a whole realm), or a client of an existing NATS cluster.
//
// Both modes hand back a *nats.Conn; nothing above this package knows which
// one it got, which is what keeps the code path the same in both.
//
// Every connection authenticates in both modes. The embedded server admits
// only the realm (under a key made for each run) and the twin gateways it is
// given, each confined by GatewayRules; a cluster client presents the
// credentials and TLS files of a ClientAuth.
package natsembed
