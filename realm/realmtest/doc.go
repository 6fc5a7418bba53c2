// Package realmtest is the scaffolding of the project's tests that drive
// whole realm nodes: it runs a node until the test ends, shares key files
// among the nodes of a cluster, speaks the public API the way a
// third-party client would (JSON calls that decode problem answers,
// WebAuthn ceremonies with a software authenticator, the live WebSocket),
// makes operators and market users, and polls for state that arrives
// asynchronously.
//
// It does not import the realm package: it knows a node by the methods it
// calls and reads its internals through realm/internal/probe. So the
// realm package's own tests and the packages that start realms from
// outside it (realm/browsertest, realm/clustertest) share one copy. Only
// tests import it; internal/archtest holds that.
package realmtest
