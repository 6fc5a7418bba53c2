package store

import (
	"context"
	"testing"
	"time"
)

// TestCleanupOutlivesItsRequestByTheGraceOnly: a clean-up is not cut off
// when its request is cancelled (the client hung up), ends CleanupGrace
// after the request's deadline, so every clean-up of one request ends by
// the same instant, and without a deadline gets CleanupTimeout.
func TestCleanupOutlivesItsRequestByTheGraceOnly(t *testing.T) {
	deadline := time.Now().Add(time.Hour)
	req, cancel := context.WithDeadline(context.Background(), deadline)
	cctx, ccancel := Cleanup(req)
	defer ccancel()
	cancel()
	if err := cctx.Err(); err != nil {
		t.Fatalf("clean-up ended with its request: %v", err)
	}
	if d, ok := cctx.Deadline(); !ok || !d.Equal(deadline.Add(CleanupGrace)) {
		t.Fatalf("clean-up deadline = %v (%v), want the request's plus %v", d, ok, CleanupGrace)
	}

	before := time.Now()
	free, fcancel := Cleanup(context.Background())
	defer fcancel()
	if d, ok := free.Deadline(); !ok || d.Before(before.Add(CleanupTimeout)) {
		t.Fatalf("clean-up without a deadline ends at %v (%v), want %v from now", d, ok, CleanupTimeout)
	}
}
