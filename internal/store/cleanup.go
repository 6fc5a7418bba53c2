package store

import (
	"context"
	"time"
)

// CleanupGrace is how long past its request's deadline the clean-up after
// the request's work may still run: freeing an Idempotency-Key or a nonce
// after a refusal, recording an answer for retries. The clean-up must not
// be abandoned because the client hung up or the budget was spent by the
// work itself (a key left claimed answers 409 until it expires), nor may
// it hold the answer much longer than the request's budget: the answer is
// never later than the deadline plus this grace.
const CleanupGrace = 500 * time.Millisecond

// CleanupTimeout bounds a clean-up whose context has no deadline.
const CleanupTimeout = 5 * time.Second

// Cleanup is ctx for the clean-up after a request's work: ctx's values
// without its cancellation, ending CleanupGrace after ctx's deadline (or
// CleanupTimeout from now when ctx has none). Every clean-up of one
// request ends by the same instant, however many there are.
func Cleanup(ctx context.Context) (context.Context, context.CancelFunc) {
	detached := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(detached, d.Add(CleanupGrace))
	}
	return context.WithTimeout(detached, CleanupTimeout)
}
