package avatar

import (
	"slices"
	"time"
)

// maxCounterMarks bounds the counters remembered per credential, so a
// credential used thousands of times a minute keeps a small record.
const maxCounterMarks = 64

// counterLog remembers the signature counters a credential presented
// recently, so that sign-ins finishing out of order are told apart from a
// cloned authenticator.
//
// The rule. WebAuthn (§7.2 step 21) calls a counter that is not above the
// stored one, when either is non-zero, a sign of cloning. Applied to the
// stored counter at the moment a finish is written, it misfires under
// concurrency: an authenticator issues counters 10 and 20 for two
// ceremonies in flight, 20 finishes first, and 10, genuine, looks old.
// So a presented counter is judged against the baseline: the highest
// counter this record had accepted when the presenting ceremony began
// (the floor, or a mark with At no later than the ceremony's start).
// An assertion is made after its ceremony began, and a genuine
// authenticator's counter only grows, so every genuine counter is above
// the baseline; one at or below it is from another copy of the key. A
// counter above the baseline but not above the stored maximum is accepted
// once (it is marked, and presenting it again is a clone) without
// lowering the stored maximum.
//
// What this gives up: a copy whose counter lands between the baseline and
// the maximum, inside one ceremony's lifetime, is not caught on that
// sign-in, only on a later one; and because the baseline is read from
// wall clocks, realm nodes whose clocks disagree by more than the time
// between two sign-ins can misjudge by that much. Marks older than twice
// the ceremony TTL cannot matter to a live ceremony and are folded into
// the floor; past maxCounterMarks recent marks the oldest are folded too,
// which can only make the check stricter (a false alarm needs more than
// maxCounterMarks sign-ins with one credential while a ceremony is open).
//
// A counter of 0 presented against a stored 0 is a passkey without a
// counter (synced passkeys keep it at 0): accepted, never a clone.
type counterLog struct {
	Floor uint32        `json:"floor"`
	Marks []counterMark `json:"marks,omitempty"`
}

type counterMark struct {
	Count uint32    `json:"n"`
	At    time.Time `json:"at"`
}

// admit decides on a presented counter for a ceremony begun at begun, with
// stored the credential's current maximum. It returns the new maximum and
// whether the counter is genuine; on false only pruning changed l.
func (l *counterLog) admit(presented, stored uint32, begun, now time.Time, window time.Duration) (uint32, bool) {
	l.prune(now.Add(-window))
	if presented == 0 && stored == 0 {
		return 0, true
	}
	if presented > stored {
		l.mark(presented, now)
		return presented, true
	}
	if presented <= l.baseline(begun) || slices.ContainsFunc(l.Marks, func(m counterMark) bool { return m.Count == presented }) {
		return stored, false
	}
	l.mark(presented, now)
	return stored, true
}

func (l *counterLog) baseline(begun time.Time) uint32 {
	b := l.Floor
	for _, m := range l.Marks {
		if !m.At.After(begun) {
			b = max(b, m.Count)
		}
	}
	return b
}

func (l *counterLog) mark(n uint32, at time.Time) {
	l.Marks = append(l.Marks, counterMark{Count: n, At: at})
	for len(l.Marks) > maxCounterMarks {
		l.Floor = max(l.Floor, l.Marks[0].Count)
		l.Marks = l.Marks[1:]
	}
}

// prune folds marks at or before cutoff into the floor: no live ceremony
// began before cutoff, so for all of them those marks are below the
// baseline anyway.
func (l *counterLog) prune(cutoff time.Time) {
	i := 0
	for i < len(l.Marks) && !l.Marks[i].At.After(cutoff) {
		l.Floor = max(l.Floor, l.Marks[i].Count)
		i++
	}
	l.Marks = slices.Clone(l.Marks[i:])
	if len(l.Marks) == 0 {
		l.Marks = nil
	}
}
