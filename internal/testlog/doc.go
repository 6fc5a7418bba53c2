// Package testlog gives tests a log/slog logger that writes into the
// test's own output (t.Log), so that a component's warnings show beside
// the failure they explain and nowhere for a test that passes. Only tests
// import it (internal/archtest).
package testlog
