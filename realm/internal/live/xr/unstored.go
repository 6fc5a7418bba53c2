package xr

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/audit"
)

// A template a stream enrolled or adapted is stored once, right away. A
// store that does not answer in time (a node far behind, JetStream
// electing a leader) used to lose it: the node scored the avatar against
// it until it restarted, no other node ever learnt it, and an enrollment
// left no audit record. Now the template waits here, in memory, and is
// stored again on a backoff until the store takes it, or until it is void:
// a template deletion since the consent it was collected under (or, for
// an adapted template, since the enrollment it adapts) means the person
// asked for it to be gone, and a late write must not bring it back.

// unstoredTemplate is a template still to be stored.
type unstoredTemplate struct {
	t *biometrics.Template
	// since is the consent for an enrollment, the template's creation for
	// an adaptation: a deletion after it voids the template.
	since time.Time
	// enrolled: an enrollment, whose audit record is written once the
	// template is stored.
	enrolled bool
	session  string
	tries    int
	next     time.Time
}

// unstoredTemplates are the templates of this node still to be stored, by
// avatar: the newest of each, since an adapted template holds all that
// the one before it did.
type unstoredTemplates struct {
	mu sync.Mutex
	of map[string]*unstoredTemplate
}

// keep holds u for the avatar after a failed write at now; a newer
// template replaces an older one, keeping an enrollment's audit record
// still to write.
func (us *unstoredTemplates) keep(avatarID string, u *unstoredTemplate, now time.Time) {
	us.mu.Lock()
	defer us.mu.Unlock()
	if us.of == nil {
		us.of = map[string]*unstoredTemplate{}
	}
	if old, ok := us.of[avatarID]; ok {
		u.tries = old.tries
		if old.enrolled {
			u.enrolled, u.since, u.session = true, old.since, old.session
		}
	}
	u.next = now.Add(backoff(u.tries))
	u.tries++
	us.of[avatarID] = u
}

// drop forgets the avatar's unstored template, and returns it: a newer
// one was stored, or the template was deleted.
func (us *unstoredTemplates) drop(avatarID string) *unstoredTemplate {
	us.mu.Lock()
	defer us.mu.Unlock()
	u := us.of[avatarID]
	delete(us.of, avatarID)
	return u
}

// due takes out the templates due at now, by avatar.
func (us *unstoredTemplates) due(now time.Time) map[string]*unstoredTemplate {
	us.mu.Lock()
	defer us.mu.Unlock()
	out := map[string]*unstoredTemplate{}
	for id, u := range us.of {
		if !now.Before(u.next) {
			out[id] = u
			delete(us.of, id)
		}
	}
	return out
}

// putBack returns a taken template after another failed write, unless a
// newer one was kept for the avatar meanwhile.
func (us *unstoredTemplates) putBack(avatarID string, u *unstoredTemplate, now time.Time) {
	us.mu.Lock()
	if _, newer := us.of[avatarID]; newer {
		us.mu.Unlock()
		return
	}
	us.mu.Unlock()
	us.keep(avatarID, u, now)
}

func (us *unstoredTemplates) count() int {
	us.mu.Lock()
	defer us.mu.Unlock()
	return len(us.of)
}

// storeTemplate stores a template a stream of the session enrolled or
// adapted, or keeps it to store again; since is as in unstoredTemplate.
func (s *Service) storeTemplate(ctx context.Context, avatarID, sessionID string, t *biometrics.Template, enrolled bool, since time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), xrStoreTimeout)
	defer cancel()
	if err := s.templates.Put(ctx, avatarID, t); err != nil {
		s.unstored.keep(avatarID, &unstoredTemplate{t: t, since: since, enrolled: enrolled, session: sessionID}, s.deps.Clock.Now())
		s.log.Error("store biometric template; storing it again", "avatar", avatarID, "enrolled", enrolled, "err", err)
		return
	}
	if old := s.unstored.drop(avatarID); old != nil && old.enrolled && !enrolled {
		// The enrollment this template adapts was never stored: its record
		// is still owed.
		s.auditEnrolled(ctx, avatarID, old.session, old.t)
	}
	if enrolled {
		s.auditEnrolled(ctx, avatarID, sessionID, t)
	}
}

func (s *Service) auditEnrolled(ctx context.Context, avatarID, sessionID string, t *biometrics.Template) {
	s.deps.Audit.RecordQueued(ctx, audit.Event{
		Actor: avatarID, Action: "EnrollBiometrics", Resource: templateResource(avatarID), Outcome: audit.Allow,
		Reasons: []string{"motion template collected right after a user-verified passkey assertion"},
		Signals: map[string]any{"session": sessionID, "windows": t.Windows, "motion_s": s.enroll.Seconds()},
	})
}

// storeAgain writes the templates still to be stored, every second until
// ctx ends.
func (s *Service) storeAgain(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := s.unstored.due(s.deps.Clock.Now())
		for _, avatarID := range slices.Sorted(maps.Keys(due)) {
			s.storeOnce(ctx, avatarID, due[avatarID])
		}
	}
}

// storeOnce tries to store u again: first whether the avatar deleted a
// template since u's consent, which voids it, then the write.
func (s *Service) storeOnce(parent context.Context, avatarID string, u *unstoredTemplate) {
	ctx, cancel := context.WithTimeout(parent, xrStoreTimeout)
	defer cancel()
	deleted, err := s.templates.DeletedAt(ctx, avatarID)
	if err == nil && !consentsAfter(u.since, deleted) {
		s.log.Info("biometric template not stored: the avatar deleted its template since", "avatar", avatarID, "enrolled", u.enrolled)
		return
	}
	if err == nil {
		err = s.templates.Put(ctx, avatarID, u.t)
	}
	if err != nil {
		if parent.Err() == nil {
			s.unstored.putBack(avatarID, u, s.deps.Clock.Now())
			s.log.Warn("biometric template still not stored; storing it again", "avatar", avatarID, "tries", u.tries, "err", err)
		}
		return
	}
	s.log.Info("biometric template stored after the store did not answer", "avatar", avatarID, "enrolled", u.enrolled, "tries", u.tries)
	if u.enrolled {
		s.auditEnrolled(ctx, avatarID, u.session, u.t)
	}
}
