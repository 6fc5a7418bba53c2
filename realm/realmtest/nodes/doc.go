// Package nodes starts realm nodes for the test packages outside the realm
// package (realm/browsertest, realm/clustertest), on realmtest's
// scaffolding. It is apart from realmtest because it imports the realm,
// which the realm package's own tests, also on realmtest, cannot have
// imported. Only tests import it; internal/archtest holds that.
package nodes
