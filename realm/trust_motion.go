package realm

import (
	"context"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/trust"
)

// observeMotion records what a session's XR stream found: a window's match
// probability (trust.BiometricMatch), or a failed liveness check
// (trust.Liveness; replayed or impossible motion is an attack, and
// suspends the session). Only a change of state is persisted and audited:
// scores arrive every second per stream, and the bucket keeps what a
// rebuild needs.
func (h *trustHub) observeMotion(ctx context.Context, sess session.Session, s trust.Signal) (trust.Assessment, error) {
	st := h.tracker(ctx, sess)
	a, err := st.tracker.Observe(s)
	if err != nil {
		return a, err
	}
	if a.Changed {
		h.persist(ctx, sess.ID, st, a, nil)
		h.changed(ctx, sess.ID, st.avatar, a)
	}
	return a, nil
}
