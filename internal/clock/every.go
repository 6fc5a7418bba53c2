package clock

import (
	"context"
	"time"
)

// Every calls f every d of c until ctx ends; f gets ctx. It returns when
// ctx ends, after the call in progress, if any, has returned. The first
// call is d after Every begins, not at once. d must be positive, as for
// NewTicker.
//
// It is the one shape of the tree's background loops (refresh, probe,
// re-assess, heartbeat), so that each loop runs on the clock it is given:
// on a Manual clock a test moves time by d and the loop runs, with no
// sleeping. Ticks missed while f runs are dropped, as a time.Ticker drops
// them: a slow f is not called in a burst afterwards.
func Every(ctx context.Context, c Clock, d time.Duration, f func(context.Context)) {
	EveryOrWake(ctx, c, d, nil, f)
}

// EveryOrWake is Every that also calls f whenever wake receives, for a
// loop that someone may ask to run early (a batch that filled up). A nil
// wake never receives.
func EveryOrWake(ctx context.Context, c Clock, d time.Duration, wake <-chan struct{}, f func(context.Context)) {
	t := c.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-wake:
		}
		if ctx.Err() != nil {
			// Both were ready and select chose the tick: an ended
			// context wins, so no call starts after it ended.
			return
		}
		f(ctx)
	}
}
