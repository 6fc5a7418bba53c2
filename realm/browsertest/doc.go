// Package browsertest holds the realm's tests that drive headless Chromium
// against running realm nodes: the passkey pages, the web console's whole
// story, the audit viewer, the operations views, the marketplace's signer
// view and the browser's XR transport. They live apart from the realm
// package so that `go test ./...` runs them beside its other tests instead
// of after them. It has no code of its own: the scaffolding is
// realm/realmtest.
package browsertest
