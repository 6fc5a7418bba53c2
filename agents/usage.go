package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

// Usage is accounted per root delegation and period, in one bucket value
// that holds a counter for every block of every chain under that root:
//
//	agent-usage-day    <root id>.<YYYYMMDD>      {"<block id>": base units reserved}
//	agent-usage-minute <root id>.<YYYYMMDDhhmm>  {"<block id>": commands reserved}
//
// A block's limit binds everything done through it, by its own holder and
// by every sub-agent below it; one value per root lets a single
// compare-and-set update every block of a chain at once. Periods are UTC
// calendar days and minutes: a key per period needs no clean-up beyond
// the bucket's TTL.
//
// A counter is what every realm node has reserved of the block's limit:
// what was spent, and what a node leased and has not spent yet. A node
// that needs room takes the action's amount and, while the limit is far,
// a lease of more (a quarter of what is left, at most leaseActions
// actions, in whole multiples of the amount) with one compare-and-set,
// and spends the following actions from its lease without the store. A
// compare-and-set never takes a block past its limit, so the sum of every
// node's spends and leases never does either: the limit holds across
// nodes. A lease a node never spends (it stopped, or its demand moved to
// another node) is lost to the period, counted as spent: the limit errs
// towards refusing. Close gives back what is unspent.
type usage struct {
	day, minute *store.Bucket
	log         *slog.Logger

	mu     sync.Mutex
	leases map[leaseID]*lease
	// sweepAt is the number of leases at which those of past periods are
	// dropped next: twice what the last sweep left, so that sweeping costs
	// a constant per lease made however many are current.
	sweepAt int
}

type leaseID struct{ bucket, key string }

// lease is this node's view of one key: the shared counters as last read
// or written, and what this node holds of them unspent.
type lease struct {
	b   *store.Bucket
	key string
	// ends is the end of the key's period: no action counts against it
	// afterwards.
	ends time.Time

	mu sync.Mutex
	// reserved and rev are the shared counters and their revision as this
	// node last read or wrote them (rev 0: the key did not exist); known
	// says they were read at least once.
	reserved counters
	rev      uint64
	known    bool
	// held is this node's unspent reservation, per block.
	held counters
}

// Counters are what the blocks of one root have used in one period.
type counters map[string]uint64

// Bounds on leases: a node leases at most a quarter of the room a limit
// has left, so that others still find room, and at most leaseActions
// actions' worth, so that a node that stops loses little.
const (
	leaseShare   = 4
	leaseActions = 32
)

// maxSpendAttempts bounds the compare-and-set retries of one spend; each
// conflict is another node spending or leasing under the same root.
const maxSpendAttempts = 32

// sweepAbove is the least number of leases kept before those of past
// periods are dropped.
const sweepAbove = 256

func newUsage(ctx context.Context, st *store.Store, log *slog.Logger) (*usage, error) {
	day, err := st.Bucket(ctx, store.BucketConfig{Name: "agent-usage-day", TTL: 48 * time.Hour, Sealed: true})
	if err != nil {
		return nil, fmt.Errorf("agents: usage bucket: %w", err)
	}
	minute, err := st.Bucket(ctx, store.BucketConfig{Name: "agent-usage-minute", TTL: 2 * time.Minute, Sealed: true})
	if err != nil {
		return nil, fmt.Errorf("agents: usage bucket: %w", err)
	}
	return &usage{day: day, minute: minute, log: log, leases: map[leaseID]*lease{}}, nil
}

// dayLease and minuteLease are this node's lease of root's counters for
// the period of now.
func (u *usage) dayLease(root string, now time.Time) *lease {
	now = now.UTC()
	start := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	return u.lease(u.day, root+"."+now.Format("20060102"), start.AddDate(0, 0, 1), now)
}

func (u *usage) minuteLease(root string, now time.Time) *lease {
	now = now.UTC()
	return u.lease(u.minute, root+"."+now.Format("200601021504"), now.Truncate(time.Minute).Add(time.Minute), now)
}

func (u *usage) lease(b *store.Bucket, key string, ends, now time.Time) *lease {
	id := leaseID{b.Name(), key}
	u.mu.Lock()
	defer u.mu.Unlock()
	if l, ok := u.leases[id]; ok {
		return l
	}
	if len(u.leases) >= max(u.sweepAt, sweepAbove) {
		maps.DeleteFunc(u.leases, func(_ leaseID, l *lease) bool { return !l.ends.After(now) })
		u.sweepAt = 2 * len(u.leases)
	}
	l := &lease{b: b, key: key, ends: ends, reserved: counters{}, held: counters{}}
	u.leases[id] = l
	return l
}

// read is the key's counters and revision from the store.
func (l *lease) read(ctx context.Context) (counters, uint64, error) {
	e, err := l.b.Get(ctx, l.key)
	if errors.Is(err, store.ErrNotFound) {
		return counters{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("agents: usage %s: %w", l.key, err)
	}
	c := counters{}
	if err := json.Unmarshal(e.Value, &c); err != nil {
		// Sealed: only this package wrote it. Refuse rather than reset.
		return nil, 0, fmt.Errorf("agents: usage %s: undecodable counters: %w", l.key, err)
	}
	return c, e.Revision, nil
}

// refresh reads the key again.
func (l *lease) refresh(ctx context.Context) error {
	got, rev, err := l.read(ctx)
	if err != nil {
		return err
	}
	l.absorb(got, rev)
	return nil
}

// absorb takes a read that is newer than what the lease knows. Counters
// only move by compare-and-set, each at a higher revision.
func (l *lease) absorb(c counters, rev uint64) {
	switch {
	case !l.known || rev > l.rev:
		l.reserved, l.rev, l.known = c, rev, true
	case rev == 0 && l.rev > 0:
		// The key is gone though its period is not over (a clock far
		// behind, a purge): every reservation went with it, this node's
		// lease too, which it must not spend past the limit.
		l.reserved, l.rev = c, 0
		clear(l.held)
	}
}

// covers reports whether this node's lease holds amount for every block
// of chain, so an action needs no store.
func (l *lease) covers(c *Chain, amount uint64) bool {
	if !l.known {
		return false
	}
	for i := range c.Blocks {
		if l.held[c.Blocks[i].Grant.ID] < amount {
			return false
		}
	}
	return true
}

// used is what the chain's blocks have used as this node sees it: the
// shared reservations less this node's unspent lease (other nodes'
// unspent leases count as used).
func (l *lease) used(c *Chain) counters {
	u := make(counters, len(c.Blocks))
	for i := range c.Blocks {
		id := c.Blocks[i].Grant.ID
		u[id] = sub(l.reserved[id], l.held[id])
	}
	return u
}

// view is used for an action of amount: from the lease when it covers the
// action, else from a fresh read of the store.
func (l *lease) view(ctx context.Context, c *Chain, amount uint64) (counters, error) {
	l.mu.Lock()
	if l.covers(c, amount) {
		defer l.mu.Unlock()
		return l.used(c), nil
	}
	l.mu.Unlock()
	got, rev, err := l.read(ctx)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.absorb(got, rev)
	return l.used(c), nil
}

// spend takes amount through every block of chain, each within
// limit(block), or nothing: a block without room refuses the whole spend
// with a DenyError of reason. From the lease when it covers the action;
// otherwise one compare-and-set reserves the action and a new lease.
func (l *lease) spend(ctx context.Context, c *Chain, amount uint64, limit func(*Grant) uint64, reason Reason, what string) error {
	if amount == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.covers(c, amount) {
		l.take(c, amount)
		return nil
	}
	// The first attempt decides from what this node knows (usually the
	// read Evaluate just made); a refusal is only ever decided on a fresh
	// read, and a conflict reads again.
	fresh := false
	for range maxSpendAttempts {
		if !l.known {
			if err := l.refresh(ctx); err != nil {
				return err
			}
			fresh = true
		}
		add, err := l.grow(c, amount, limit, reason, what)
		if err != nil && !fresh && ReasonOf(err) != "" {
			if err := l.refresh(ctx); err != nil {
				return err
			}
			fresh = true
			add, err = l.grow(c, amount, limit, reason, what)
		}
		if err != nil {
			return err
		}
		next := maps.Clone(l.reserved)
		for id, n := range add {
			next[id] += n
		}
		data, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("agents: usage %s: %w", l.key, err)
		}
		var rev uint64
		if l.rev == 0 {
			rev, err = l.b.Create(ctx, l.key, data)
		} else {
			rev, err = l.b.Update(ctx, l.key, data, l.rev)
		}
		if errors.Is(err, store.ErrConflict) {
			// Another node reserved under this root first: decide again.
			if err := l.refresh(ctx); err != nil {
				return err
			}
			fresh = true
			continue
		}
		if err != nil {
			return fmt.Errorf("agents: usage %s: %w", l.key, err)
		}
		l.reserved, l.rev = next, rev
		for id, n := range add {
			l.held[id] += n
		}
		l.take(c, amount)
		return nil
	}
	return fmt.Errorf("agents: usage %s: %w after %d attempts", l.key, store.ErrConflict, maxSpendAttempts)
}

// grow is what each block of chain must reserve so that this node holds
// amount of it, plus a lease while the limit is far: the same number of
// whole actions for every block. A block without room for amount refuses.
func (l *lease) grow(c *Chain, amount uint64, limit func(*Grant) uint64, reason Reason, what string) (counters, error) {
	spare := uint64(math.MaxUint64)
	need := make(counters, len(c.Blocks))
	for i := range c.Blocks {
		g := &c.Blocks[i].Grant
		held, reserved := l.held[g.ID], l.reserved[g.ID]
		room := sub(limit(g), reserved)
		n := sub(amount, held)
		if n > room {
			return nil, deny(reason, "%s: delegation %s allows %d, %d used, %d more asked", what, g.ID, limit(g), sub(reserved, held), amount)
		}
		need[g.ID] = n
		spare = min(spare, room-n)
	}
	extra := spare / leaseShare
	if amount <= math.MaxUint64/leaseActions {
		extra = min(extra, leaseActions*amount)
	}
	extra -= extra % amount
	add := make(counters, len(c.Blocks))
	for i := range c.Blocks {
		id := c.Blocks[i].Grant.ID
		// Every block ends up holding amount+extra at least; a block that
		// already holds more takes only what it lacks of amount.
		n := need[id]
		if have, want := addSat(l.held[id], n), addSat(amount, extra); have < want {
			n += want - have
		}
		if n > 0 {
			add[id] = n
		}
	}
	return add, nil
}

// take spends amount of the lease from every block of chain.
func (l *lease) take(c *Chain, amount uint64) {
	for i := range c.Blocks {
		l.held[c.Blocks[i].Grant.ID] -= amount
	}
}

// release gives back what this node holds unspent of every lease whose
// period has not ended, so that other nodes can use it.
func (u *usage) release(ctx context.Context, now time.Time) {
	u.mu.Lock()
	all := make([]*lease, 0, len(u.leases))
	for _, l := range u.leases {
		if l.ends.After(now) {
			all = append(all, l)
		}
	}
	u.mu.Unlock()
	for _, l := range all {
		if err := l.giveBack(ctx); err != nil {
			u.log.Warn("an agent usage lease was not given back: it stays reserved until its period ends", "key", l.key, "err", err)
		}
	}
}

func (l *lease) giveBack(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range maxSpendAttempts {
		if !anyHeld(l.held) {
			return nil
		}
		got, rev, err := l.read(ctx)
		if err != nil {
			return err
		}
		next := maps.Clone(got)
		for id, n := range l.held {
			next[id] = sub(next[id], n)
		}
		data, err := json.Marshal(next)
		if err != nil {
			return err
		}
		if rev == 0 {
			clear(l.held) // the period's counters expired: nothing to give back
			return nil
		}
		rev, err = l.b.Update(ctx, l.key, data, rev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		l.reserved, l.rev = next, rev
		clear(l.held)
		return nil
	}
	return store.ErrConflict
}

func anyHeld(c counters) bool {
	for _, n := range c {
		if n > 0 {
			return true
		}
	}
	return false
}

// addSat is a+b, or the largest uint64 when that overflows.
func addSat(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// sub is a-b, or 0 when b > a.
func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
