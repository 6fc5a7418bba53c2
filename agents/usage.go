package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

// Usage is accounted per root delegation and period, in one bucket value
// that holds a counter for every block of every chain under that root:
//
//	agent-usage-day    <root id>.<YYYYMMDD>      {"<block id>": base units moved}
//	agent-usage-minute <root id>.<YYYYMMDDhhmm>  {"<block id>": commands}
//
// A block's limit binds everything done through it, by its own holder and
// by every sub-agent below it; one value per root lets a single
// compare-and-set update every block of a chain at once, so two realm
// nodes never both spend the last of any block's budget. Periods are UTC
// calendar days and minutes: a key per period needs no clean-up beyond
// the bucket's TTL.
type usage struct {
	day, minute *store.Bucket

	// seen holds what Evaluate read of a key for the Spend that follows
	// an allowed action: its first compare-and-set starts from that read
	// instead of reading again. A read gone stale meanwhile (another spend
	// under the same root) only makes the compare-and-set conflict, and
	// the spend reads again, so it is never trusted past the revision
	// check.
	seen     sync.Map // key => read
	seenSize atomic.Int64
}

// read is one read of a key: its counters and the revision they are at.
type read struct {
	c   counters
	rev uint64
}

// maxSeen bounds the reads kept for a spend: past it they are dropped
// (actions allowed by the delegation and then refused by Cedar leave
// theirs behind).
const maxSeen = 4096

// remember keeps a read for the spend of an allowed action. The counters
// must not be read by anyone else afterwards: the spend changes them.
func (u *usage) remember(key string, c counters, rev uint64) {
	if u.seenSize.Add(1) > maxSeen {
		u.seen.Clear()
		u.seenSize.Store(0)
	}
	u.seen.Store(key, read{c: c, rev: rev})
}

// recall takes the read Evaluate kept for key, if any.
func (u *usage) recall(key string) (counters, uint64, bool) {
	v, ok := u.seen.LoadAndDelete(key)
	if !ok {
		return nil, 0, false
	}
	u.seenSize.Add(-1)
	r := v.(read)
	return r.c, r.rev, true
}

// Counters are what the blocks of one root have used in one period.
type counters map[string]uint64

// maxSpendAttempts bounds the compare-and-set retries of one spend; each
// conflict is another node (or request) spending under the same root.
const maxSpendAttempts = 32

func newUsage(ctx context.Context, st *store.Store) (*usage, error) {
	day, err := st.Bucket(ctx, store.BucketConfig{Name: "agent-usage-day", TTL: 48 * time.Hour, Sealed: true})
	if err != nil {
		return nil, fmt.Errorf("agents: usage bucket: %w", err)
	}
	minute, err := st.Bucket(ctx, store.BucketConfig{Name: "agent-usage-minute", TTL: 2 * time.Minute, Sealed: true})
	if err != nil {
		return nil, fmt.Errorf("agents: usage bucket: %w", err)
	}
	return &usage{day: day, minute: minute}, nil
}

func dayKey(root string, now time.Time) string {
	return root + "." + now.UTC().Format("20060102")
}

func minuteKey(root string, now time.Time) string {
	return root + "." + now.UTC().Format("200601021504")
}

func (u *usage) read(ctx context.Context, b *store.Bucket, key string) (counters, uint64, error) {
	e, err := b.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return counters{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("agents: usage %s: %w", key, err)
	}
	c := counters{}
	if err := json.Unmarshal(e.Value, &c); err != nil {
		// Sealed: only this package wrote it. Refuse rather than reset.
		return nil, 0, fmt.Errorf("agents: usage %s: undecodable counters: %w", key, err)
	}
	return c, e.Revision, nil
}

// add spends amount through every block of chain, each within limit(block),
// or nothing: a block without room refuses the whole spend with a
// DenyError of reason.
func (u *usage) add(ctx context.Context, b *store.Bucket, key string, c *Chain, amount uint64, limit func(*Grant) uint64, reason Reason, what string) (counters, error) {
	for attempt := range maxSpendAttempts {
		used, rev, ok := counters(nil), uint64(0), false
		if attempt == 0 {
			used, rev, ok = u.recall(key)
		}
		if !ok {
			var err error
			if used, rev, err = u.read(ctx, b, key); err != nil {
				return nil, err
			}
		}
		for i := range c.Blocks {
			g := &c.Blocks[i].Grant
			have := used[g.ID]
			if have > math.MaxUint64-amount || have+amount > limit(g) {
				return nil, deny(reason, "%s: delegation %s allows %d, %d used, %d more asked", what, g.ID, limit(g), have, amount)
			}
		}
		for i := range c.Blocks {
			used[c.Blocks[i].Grant.ID] += amount
		}
		data, err := json.Marshal(used)
		if err != nil {
			return nil, fmt.Errorf("agents: usage %s: %w", key, err)
		}
		if rev == 0 {
			_, err = b.Create(ctx, key, data)
		} else {
			_, err = b.Update(ctx, key, data, rev)
		}
		if errors.Is(err, store.ErrConflict) {
			continue // another spend under this root landed first: decide again
		}
		if err != nil {
			return nil, fmt.Errorf("agents: usage %s: %w", key, err)
		}
		return used, nil
	}
	return nil, fmt.Errorf("agents: usage %s: %w after %d attempts", key, store.ErrConflict, maxSpendAttempts)
}
