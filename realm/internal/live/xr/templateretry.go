package xr

import (
	"hash/fnv"
	"slices"
	"time"
)

// Whatever the realm reads or writes again after its store did not answer
// (settle.go, unstored.go, the template feed below) backs off the same
// way: from retryFirst, doubling, to retryMost.
const (
	retryFirst = 2 * time.Second
	retryMost  = 30 * time.Second
)

// retry is when a failed store call is made again, and how many failed
// in a row.
type retry struct {
	tries int
	next  time.Time
}

// failed notes a failure at now and sets the next try, spread over up to
// half as long again by spread (a hash; 0 spreads nothing), so that the
// calls a slow store failed together do not all come again at once.
func (r *retry) failed(now time.Time, spread uint32) {
	wait := min(retryFirst<<min(r.tries, 4), retryMost)
	wait += time.Duration(uint64(wait/2) * uint64(spread%1024) / 1024)
	r.tries++
	r.next = now.Add(wait)
}

// spreadOf is a session's spread for retry.failed.
func spreadOf(sessionID string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(sessionID))
	return h.Sum32()
}

// templateRetries are the reads of the template feed that failed and are
// tried again: templates of single avatars, or the whole reconcile. It
// belongs to the goroutine that follows the feed.
type templateRetries struct {
	reads map[string]retry
	// reconcile is a failed reconcile's retry (next zero: none failed);
	// it reads every template, so it makes the reads unneeded.
	reconcile retry
}

// read notes that the avatar's template could not be read at now.
func (r *templateRetries) read(avatarID string, now time.Time) {
	if r.reads == nil {
		r.reads = map[string]retry{}
	}
	t := r.reads[avatarID]
	t.failed(now, 0)
	r.reads[avatarID] = t
}

// done forgets the avatar's retry: its template was read, or a later
// change of it made the read unneeded.
func (r *templateRetries) done(avatarID string) { delete(r.reads, avatarID) }

func (r *templateRetries) reconciling() bool { return !r.reconcile.next.IsZero() }

// next is when the earliest retry is due, if any is waiting.
func (r *templateRetries) next() (time.Time, bool) {
	at, ok := r.reconcile.next, r.reconciling()
	for _, t := range r.reads {
		if !ok || t.next.Before(at) {
			at, ok = t.next, true
		}
	}
	return at, ok
}

// due lists the avatars whose reads are due at now, in order.
func (r *templateRetries) due(now time.Time) []string {
	var ids []string
	for id, t := range r.reads {
		if !now.Before(t.next) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
