package xr

import (
	"slices"
	"time"
)

// templateRetries are the reads of the template feed that failed and are
// tried again: templates of single avatars, or the whole reconcile. Each
// backs off as a stream's rereads do (settle.go), from settleFirst to
// settleMost. It belongs to the goroutine that follows the feed.
type templateRetries struct {
	reads map[string]retry
	// reconcileAt is when a failed reconcile is tried again (zero: none
	// failed); it reads every template, so it makes the reads unneeded.
	reconcileAt    time.Time
	reconcileTries int
}

type retry struct {
	at    time.Time
	tries int
}

// backoff is how long to wait after the tries-th failure in a row.
func backoff(tries int) time.Duration {
	return min(settleFirst<<min(tries, 4), settleMost)
}

// read notes that the avatar's template could not be read at now.
func (r *templateRetries) read(avatarID string, now time.Time) {
	if r.reads == nil {
		r.reads = map[string]retry{}
	}
	t := r.reads[avatarID]
	t.at = now.Add(backoff(t.tries))
	t.tries++
	r.reads[avatarID] = t
}

// done forgets the avatar's retry: its template was read, or a later
// change of it made the read unneeded.
func (r *templateRetries) done(avatarID string) { delete(r.reads, avatarID) }

// reconcileFailed notes that a reconcile failed at now.
func (r *templateRetries) reconcileFailed(now time.Time) {
	r.reconcileAt = now.Add(backoff(r.reconcileTries))
	r.reconcileTries++
}

func (r *templateRetries) reconciling() bool { return !r.reconcileAt.IsZero() }

// next is when the earliest retry is due, if any is waiting.
func (r *templateRetries) next() (time.Time, bool) {
	at, ok := r.reconcileAt, r.reconciling()
	for _, t := range r.reads {
		if !ok || t.at.Before(at) {
			at, ok = t.at, true
		}
	}
	return at, ok
}

// due lists the avatars whose reads are due at now, in order.
func (r *templateRetries) due(now time.Time) []string {
	var ids []string
	for id, t := range r.reads {
		if !now.Before(t.at) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
