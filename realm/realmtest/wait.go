package realmtest

import (
	"log/slog"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/testlog"
)

// Logger is what a realm under test logs through: warnings into the
// test's log with -v, nothing otherwise.
func Logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return testlog.New(t)
	}
	return slog.New(slog.DiscardHandler)
}

// Eventually polls cond until it holds or 10s pass: state written through
// one node reaches another asynchronously.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, what, 10*time.Second, cond)
}

// EventuallyWithin polls cond until it holds or limit passes.
func EventuallyWithin(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
