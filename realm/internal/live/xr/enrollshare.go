package xr

import (
	"context"
	"errors"
	"sync"

	"github.com/zerorealm/zerorealm/biometrics"
)

// An enrollment set aside on this node is also written, sealed, to the
// cluster's store (biometrics.AsideStore), and a session's stream that
// opens on a node without its enrollment claims it from there: a headset
// that a load balancer, or a node shedding streams while it catches up,
// sends to another node goes on with its enrollment there instead of
// giving the minute of motion again.
//
// One node goes on with it, never two. Taking it from the store is a
// compare-and-set delete, and the node that set it aside removes the
// store's copy the same way before it goes on with its own: whichever
// comes second finds it gone, and starts over as a new enrollment would
// (if it may). The store's copy expires with EnrollWithin. A store that
// does not answer costs only what another node set aside: the stream
// starts its own enrollment, if it may, and an enrollment set aside here
// goes on here.

// sharedAside is the store's copy of an enrollment set aside on this
// node: its revision once the write is answered, and whether this node
// took the enrollment up again before that, in which case the writer
// removes the copy as soon as it lands.
type sharedAside struct {
	mu      sync.Mutex
	written bool
	rev     uint64 // 0: the write failed
	taken   bool
}

// shareSetAside seals p's enrollment and writes it to the store on a
// goroutine of its own; the caller holds x.mu, on the stream's way out.
// Sealing reads the enrollment now, while no stream has it.
func (s *Service) shareSetAside(sessionID string, p *pausedEnrollment) {
	if s.aside == nil {
		return
	}
	sealed, err := s.aside.Seal(biometrics.AsideEnrollment{Session: sessionID, Enrollment: p.en, ConsentAt: p.consentAt, ClosedAt: p.closedAt})
	if err != nil {
		s.m.enrollments.WithLabelValues("not-shared").Inc()
		s.log.Warn("biometric enrollment set aside on this node only", "session", sessionID, "avatar", p.avatar, "err", err)
		return
	}
	sh := &sharedAside{}
	// Not bound to s.stop: what a stopping node sets aside on its way out
	// still reaches the store, and Close waits for the writes.
	started := s.sharing.start(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.stop), xrStoreTimeout)
		defer cancel()
		rev, err := s.aside.Put(ctx, sealed)
		sh.mu.Lock()
		sh.written, sh.rev = true, rev
		taken := sh.taken
		sh.mu.Unlock()
		switch {
		case err != nil:
			s.m.enrollments.WithLabelValues("not-shared").Inc()
			s.log.Warn("biometric enrollment set aside on this node only: the store did not take it", "session", sessionID, "avatar", p.avatar, "err", err)
		case taken:
			if err := s.aside.Release(ctx, p.avatar, sessionID, rev); err != nil && !errors.Is(err, biometrics.ErrAsideTaken) {
				s.log.Warn("remove the store's copy of an enrollment this node went on with", "session", sessionID, "avatar", p.avatar, "err", err)
			}
		}
	})
	if started {
		p.shared = sh
	}
}

// takeUpSetAside makes the session's enrollment set aside, on this node or
// another, this node's to resume, before resumeEnrollment looks for it: one
// set aside here has the store's copy removed, so that no other node goes
// on with it too (and is dropped if another node already took it up); one
// set aside elsewhere is claimed from the store. The caller may hold x.mu.
func (s *Service) takeUpSetAside(ctx context.Context, sessionID, avatarID string) {
	if s.aside == nil {
		return
	}
	if p, ok := s.paused.peek(sessionID); ok {
		switch {
		case p.shared == nil:
		case s.releaseShared(ctx, sessionID, avatarID, p.shared):
			// Released once: a stream that does not resume it now (its
			// store reads failed, or it closed meanwhile) must not take
			// its own release for another node's claim later.
			s.paused.unshare(sessionID, p.shared)
		default:
			_, _, delta := s.paused.take(sessionID)
			s.m.stateBytes.Add(float64(delta))
			s.m.enrollments.WithLabelValues("not-resumed").Inc()
			s.log.Info("biometric enrollment set aside is not resumed", "session", sessionID, "avatar", avatarID,
				"reason", "another node took it up first")
		}
		return
	}
	a, ok, err := s.aside.Claim(ctx, avatarID, sessionID)
	if err != nil {
		s.log.Warn("the enrollment set aside in the store could not be taken up (the store did not answer, or it does not open): the session starts its own enrollment if it may",
			"session", sessionID, "avatar", avatarID, "err", err)
		return
	}
	if !ok {
		return
	}
	delta := s.paused.put(sessionID, pausedEnrollment{en: a.Enrollment, avatar: avatarID,
		consentAt: a.ConsentAt, closedAt: a.ClosedAt, elsewhere: true}, s.enrollWithin)
	s.m.stateBytes.Add(float64(delta))
	s.m.enrollments.WithLabelValues("claimed").Inc()
}

// releaseShared removes the store's copy of an enrollment this node set
// aside and is about to go on with; false when another node took it
// first. A store that does not answer leaves the copy, and this node goes
// on: another node may then go on with it too, and the template written
// last is kept, both made of the same person's windows under the same
// consent.
func (s *Service) releaseShared(ctx context.Context, sessionID, avatarID string, sh *sharedAside) bool {
	sh.mu.Lock()
	if !sh.written {
		sh.taken = true // the writer removes it once it lands
		sh.mu.Unlock()
		return true
	}
	rev := sh.rev
	sh.mu.Unlock()
	if rev == 0 {
		return true // never stored
	}
	err := s.aside.Release(ctx, avatarID, sessionID, rev)
	switch {
	case errors.Is(err, biometrics.ErrAsideTaken):
		return false
	case err != nil:
		s.log.Warn("remove the store's copy of an enrollment set aside here: this node goes on with it", "session", sessionID, "avatar", avatarID, "err", err)
	}
	return true
}
