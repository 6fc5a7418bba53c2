package natstest

import (
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// Refusals collects the permission violations a server reports to one
// connection: pass Record as its nats.ErrorHandler. Tests of confinement
// wait on it, since the server reports a refused subscribe or publish
// asynchronously.
type Refusals struct {
	mu   sync.Mutex
	errs []string
}

// Record is a nats.ErrorHandler that keeps every error reported.
func (r *Refusals) Record(_ *nats.Conn, _ *nats.Subscription, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err.Error())
}

// About reports whether any error named subject (give it quoted, as the
// server writes it, to match one subject exactly).
func (r *Refusals) About(subject string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		if strings.Contains(e, subject) {
			return true
		}
	}
	return false
}

// Covers reports whether the server refused every subscription to subs
// and every publish to pubs.
func (r *Refusals) Covers(subs, pubs []string) bool {
	got := r.String()
	for _, s := range subs {
		if !strings.Contains(got, `Subscription to "`+s+`"`) {
			return false
		}
	}
	for _, s := range pubs {
		if !strings.Contains(got, `Publish to "`+s+`"`) {
			return false
		}
	}
	return true
}

func (r *Refusals) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}
