// Package clients gathers what programs written outside the realm use to talk
// to it: the Go SDKs for VR clients, marketplaces and twin consoles, the web
// console, and the wire protocol documents.
//
// Nothing under clients imports the realm's internals; clients share only
// wire types, so that an SDK works against any realm that speaks the
// documented protocol.
package clients
