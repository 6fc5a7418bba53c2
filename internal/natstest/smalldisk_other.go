//go:build !linux

package natstest

import "testing"

// SmallDisk needs a tmpfs mount, which only Linux offers here: the test is
// skipped, saying so.
func SmallDisk(t testing.TB, size int64) string {
	t.Helper()
	t.Skip("a small disk needs a Linux tmpfs mount")
	return ""
}
