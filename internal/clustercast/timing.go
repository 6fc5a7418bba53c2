package clustercast

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidTiming reports a Timing that WithDefaults refuses.
var ErrInvalidTiming = errors.New("clustercast: invalid timing")

// Timing is how long a revocation waits for the nodes and the store.
// Zero durations are the defaults.
type Timing struct {
	// AckWait bounds the wait for acknowledgements. Default 1s.
	AckWait time.Duration
	// StoreWait bounds the first, synchronous store attempt; later
	// attempts run in the background. Default 1s.
	StoreWait time.Duration
	// RetryMin and RetryMax bound the back-off between background store
	// attempts. Defaults 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// RedriveAfter is how long after acknowledging a notice a told node
	// stores it itself, should its maker have stopped before storing it.
	// Default 5s: the maker stores within its StoreWait or retries every
	// RetryMax at most.
	RedriveAfter time.Duration
}

// WithDefaults fills in zero durations and refuses negative ones, or a
// RetryMax below RetryMin.
func (t Timing) WithDefaults() (Timing, error) {
	for _, d := range []time.Duration{t.AckWait, t.StoreWait, t.RetryMin, t.RetryMax, t.RedriveAfter} {
		if d < 0 {
			return t, fmt.Errorf("%w: negative duration", ErrInvalidTiming)
		}
	}
	orDefault := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	orDefault(&t.AckWait, time.Second)
	orDefault(&t.StoreWait, time.Second)
	orDefault(&t.RetryMin, 100*time.Millisecond)
	orDefault(&t.RetryMax, 5*time.Second)
	orDefault(&t.RedriveAfter, 5*time.Second)
	if t.RetryMax < t.RetryMin {
		return t, fmt.Errorf("%w: RetryMax %v below RetryMin %v", ErrInvalidTiming, t.RetryMax, t.RetryMin)
	}
	return t, nil
}
