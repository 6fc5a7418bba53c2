// Package probe lets the project's tests that start realms from outside
// the realm package (realm/realmtest and the test packages built on it)
// read what a running node holds beyond its API: the avatars it knows,
// its audit view, its XR streams, where its presence sees an avatar.
//
// The realm sets Of when it is linked in; nothing outside realm/ can
// import this package, so the realm's public API does not grow for its
// tests. Only the realm root sets it and only realm/realmtest reads it;
// internal/archtest holds that.
package probe
