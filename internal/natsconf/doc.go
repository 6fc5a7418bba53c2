// Package natsconf writes what an operator needs to run a realm on a NATS
// cluster in which every connection authenticates: one nats-server
// configuration file per node (client and route listeners, route
// authentication, the JetStream store) and the credentials of every realm
// node and twin gateway, all in the NATS project's own formats.
//
// It uses NATS decentralized authentication. An operator key signs a system
// account and one ZeroRealm account with JetStream; the servers trust the
// operator and hold both account JWTs in memory (resolver MEMORY with
// resolver_preload). Users are not in the server configuration at all: each
// is a JWT signed by the ZeroRealm account key, carrying its own
// permissions, in a standard .creds file. So a new gateway's credentials
// are issued later, offline, by whoever holds the account key, without
// restarting or reconfiguring any server; with static nkey users every
// server's configuration would list every gateway.
//
// With TLS options every server speaks only TLS, to clients and on routes,
// where servers verify each other's certificates.
//
// Realm users may use the realm's subject prefix, the JetStream API and
// their inboxes; a gateway user may use exactly what natsembed.GatewayRules
// allows, the same rules the embedded server enforces.
package natsconf
