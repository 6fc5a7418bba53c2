package assets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/internal/store"
)

// The windows velocity is summed over. Records older than the longest
// are dropped from the read model.
const (
	VelocityShortWindow = time.Hour
	VelocityLongWindow  = 24 * time.Hour
)

// Velocity is what one holder (an avatar, with every address it owns, or
// an address no avatar owns) has moved out of one fungible collection
// recently, the transfer being decided included: a policy that limits a
// single transfer's amount compares the same limit with these sums, so
// that splitting a transfer does not avoid it.
type Velocity struct {
	// Sum1h and Sum24h are base units moved out in the last hour and 24
	// hours, capped at MaxAmount.
	Sum1h, Sum24h uint64
	// Count1h and Count24h are the transfers and trade legs.
	Count1h, Count24h uint64
}

// velocityRecord is one outgoing transfer (or trade leg) of a holder, on
// the subject ledger.velocity.<collection>.<holder>. Every one is
// appended in the same atomic batch as the balances it moves, expecting
// the subject's last sequence that the decided Velocity was summed at: of
// two transfers decided at once, on any nodes, the second write fails and
// is decided again with the first one counted.
type velocityRecord struct {
	Amount uint64      `json:"amount"`
	At     int64       `json:"at"` // Unix milliseconds, the deciding node's ledger clock
	Digest common.Hash `json:"digest"`
}

type velocityEntry struct {
	at     time.Time
	amount uint64
}

// velocityLog is one holder's records of one collection within the long
// window, oldest first, and the subject's last sequence.
type velocityLog struct {
	entries []velocityEntry
	seq     uint64
}

// errVelocityMoved: a velocity subject changed after its sums were
// decided on; the transfer must be decided again.
var errVelocityMoved = errors.New("assets: velocity changed while deciding")

func velocitySubject(coll, holder string) string { return subjVelocity + coll + "." + holder }

// applyVelocity folds a velocity record into the model; v.mu is held.
func (v *view) applyVelocity(key string, seq uint64, data []byte) error {
	var rec velocityRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return err
	}
	lg := v.velocity[key]
	if lg == nil {
		lg = &velocityLog{}
		v.velocity[key] = lg
	}
	at := time.UnixMilli(rec.At)
	lg.entries = append(lg.entries, velocityEntry{at: at, amount: rec.Amount})
	lg.seq = seq
	// Forget what no window reaches any more, measured from the newest
	// record so that the model stays bounded without a clock of its own.
	drop := 0
	for drop < len(lg.entries) && lg.entries[drop].at.Before(at.Add(-VelocityLongWindow)) {
		drop++
	}
	if drop > 0 {
		lg.entries = append(lg.entries[:0], lg.entries[drop:]...)
	}
	return nil
}

// velocityAt sums a holder's log as of now, adding amount (the transfer
// being decided), and returns the subject's last sequence.
func (v *view) velocityAt(key string, now time.Time, amount uint64) (Velocity, uint64) {
	vel := Velocity{Sum1h: amount, Sum24h: amount, Count1h: 1, Count24h: 1}
	v.mu.RLock()
	defer v.mu.RUnlock()
	lg := v.velocity[key]
	if lg == nil {
		return vel, 0
	}
	for _, e := range lg.entries {
		age := now.Sub(e.at)
		if age >= VelocityLongWindow {
			continue
		}
		vel.Sum24h, vel.Count24h = addCapped(vel.Sum24h, e.amount), vel.Count24h+1
		if age < VelocityShortWindow {
			vel.Sum1h, vel.Count1h = addCapped(vel.Sum1h, e.amount), vel.Count1h+1
		}
	}
	return vel, lg.seq
}

func (v *view) velocitySeq(key string) uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if lg := v.velocity[key]; lg != nil {
		return lg.seq
	}
	return 0
}

// holder names whoever answers for an address's transfers: the avatar a
// wallet is linked to or whose custodial address it is, else the address.
func (v *view) holder(a common.Address) string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if av, ok := v.wallets[a]; ok {
		return av
	}
	if av, ok := v.custodyOwners[a]; ok {
		return av
	}
	return addrToken(a)
}

func addCapped(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 || s > MaxAmount {
		return MaxAmount
	}
	return s
}

// velocityWrite is one velocity record to append with a batch.
type velocityWrite struct {
	key     string // "<collection>.<holder>"
	subject string
	amount  uint64
	last    uint64
	vel     Velocity
}

// velocityOf sums the velocity of every fungible leg's holder as of now,
// one record per holder and collection (a trade's two legs may share
// one), and returns each leg's Velocity (nil for unique legs) with the
// records to write.
func (l *Ledger) velocityOf(legs []legWrite, colls []*Collection, now time.Time) ([]*Velocity, []*velocityWrite) {
	vels := make([]*Velocity, len(legs))
	var writes []*velocityWrite
	byLeg := make([]*velocityWrite, len(legs))
	for i, lg := range legs {
		if colls[i].Kind != Fungible {
			continue
		}
		key := lg.t.Collection + "." + l.view.holder(lg.t.From)
		var w *velocityWrite
		for _, o := range writes {
			if o.key == key {
				w = o
			}
		}
		if w == nil {
			w = &velocityWrite{key: key, subject: subjVelocity + key}
			writes = append(writes, w)
		}
		w.amount = addCapped(w.amount, lg.t.Amount)
		byLeg[i] = w
	}
	for _, w := range writes {
		w.vel, w.last = l.view.velocityAt(w.key, now, w.amount)
	}
	for i, w := range byLeg {
		if w != nil {
			vel := w.vel
			vels[i] = &vel
		}
	}
	return vels, writes
}

// velocityMsgs are the batch's velocity records.
func velocityMsgs(writes []*velocityWrite, digest common.Hash, now time.Time) []store.AtomicMsg {
	msgs := make([]store.AtomicMsg, 0, len(writes))
	for _, w := range writes {
		data, _ := json.Marshal(velocityRecord{Amount: w.amount, At: now.UnixMilli(), Digest: digest})
		msgs = append(msgs, store.AtomicMsg{Subject: w.subject, Data: data, LastSeq: w.last})
	}
	return msgs
}

// velocityMoved catches up on the velocity subjects of a batch that
// conflicted and reports whether one of them moved since its sums were
// taken: then the decision must be made again.
func (l *Ledger) velocityMoved(ctx context.Context, writes []*velocityWrite) (bool, error) {
	for _, w := range writes {
		if err := l.catchUpSubject(ctx, w.subject); err != nil {
			return false, err
		}
		if l.view.velocitySeq(w.key) != w.last {
			return true, nil
		}
	}
	return false, nil
}

// maxVelocityRedecisions bounds how often a transfer is decided again
// because another transfer of the same holder landed first.
const maxVelocityRedecisions = 8

// applyDecided decides the legs with their velocity (authorize) and writes
// them in one atomic batch with the velocity records; when another
// transfer of a holder landed in between, it decides again with it
// counted.
func (l *Ledger) applyDecided(ctx context.Context, digest common.Hash, event string, legs []legWrite, colls []*Collection, authorize func(context.Context, Check) error) (uint64, error) {
	for range maxVelocityRedecisions {
		now := l.cfg.Now()
		vels, writes := l.velocityOf(legs, colls, now)
		if authorize != nil {
			if err := authorize(ctx, Check{Legs: colls, Velocity: vels}); err != nil {
				return 0, err
			}
		}
		seq, err := l.applyAtomic(ctx, digest, event, legs, writes, velocityMsgs(writes, digest, now))
		if !errors.Is(err, errVelocityMoved) {
			return seq, err
		}
	}
	return 0, fmt.Errorf("%w: other transfers of the same holder kept landing first; retry", ErrConflict)
}
