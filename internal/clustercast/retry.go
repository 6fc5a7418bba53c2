package clustercast

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// attemptTimeout bounds one background store attempt.
const attemptTimeout = 5 * time.Second

// Retrier stores what took effect before the store had it: one attempt
// within the caller's wait, then background attempts with back-off until
// one succeeds or the Retrier closes. It is safe for concurrent use.
type Retrier struct {
	min, max time.Duration
	// done tells an error that ends the attempts (there is nothing to
	// store) from one worth retrying.
	done func(error) bool
	log  *slog.Logger

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	pending int
}

// NewRetrier returns a Retrier whose background attempts wait from min,
// doubling, up to max between attempts. done, when not nil, reports an
// error that ends the attempts as if stored.
func NewRetrier(min, max time.Duration, done func(error) bool, log *slog.Logger) *Retrier {
	if done == nil {
		done = func(error) bool { return false }
	}
	r := &Retrier{min: min, max: max, done: done, log: log}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Close ends the background attempts and waits for them to return.
func (r *Retrier) Close() {
	r.cancel()
	r.wg.Wait()
}

// Pending counts writes whose attempts still run in the background.
func (r *Retrier) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending
}

// Now runs write once within wait and what is left of ctx's deadline (the
// caller's answer waits for it), not cancelled with ctx: a client that
// hangs up does not cut the attempt short. When it does not store, the
// background attempts begin (Later, after min). It reports whether the
// write is stored.
func (r *Retrier) Now(ctx context.Context, wait time.Duration, write func(context.Context) error) bool {
	detached := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		detached, cancel = context.WithDeadline(detached, d)
		defer cancel()
	}
	actx, cancel := context.WithTimeout(detached, wait)
	defer cancel()
	err := write(actx)
	switch {
	case err == nil:
		return true
	case r.done(err):
		r.log.Info("nothing to store", "err", err)
		return true
	}
	r.log.Warn("not stored yet; retrying in the background", "err", err)
	r.Later(r.min, write)
	return false
}

// Later retries write with back-off, the first time after first, until it
// succeeds or the Retrier closes.
func (r *Retrier) Later(first time.Duration, write func(context.Context) error) {
	r.mu.Lock()
	r.pending++
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			r.pending--
			r.mu.Unlock()
		}()
		delay := first
		for attempt := 2; ; attempt++ {
			t := time.NewTimer(delay)
			select {
			case <-r.ctx.Done():
				t.Stop()
				r.log.Warn("store attempts end with the node: the nodes told keep it until it expires", "attempts", attempt-1)
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(r.ctx, attemptTimeout)
			err := write(ctx)
			cancel()
			switch {
			case err == nil:
				r.log.Info("stored", "attempts", attempt)
				return
			case r.done(err):
				return
			case r.ctx.Err() != nil:
				continue // reported at the top
			}
			r.log.Warn("store attempt failed", "attempt", attempt, "err", err)
			delay = min(max(2*delay, r.min), r.max)
		}
	}()
}
