// Package clustertest holds the realm's tests that run several realm nodes
// on 3-node NATS clusters (or take a node's store away): state written
// through one node read through another, revocations and presence across
// nodes, a cluster that loses its quorum or a stream leader, and a realm
// on the authenticated cluster `zerorealm nats config` generates. They
// live apart from the realm package so that `go test ./...` runs them
// beside its other tests instead of after them. It has no code of its
// own: the scaffolding is realm/realmtest.
package clustertest
