package xr

import (
	"context"
	"errors"
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
// asked for it to be gone, and a late write must not bring it back. Every
// write, the first included, is a compare-and-set against the key's last
// change (TemplateStore.PutUnlessDeletedSince), so a deletion made through
// another node that this one has not heard of yet voids it too.

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
	retry
}

// unstoredTemplates are the templates of this node still to be stored, by
// avatar: the newest of each, since an adapted template holds all that
// the one before it did. While an avatar has one, its newer templates
// join it here rather than being written at once, so that the one
// goroutine that writes them (storeAgain) writes an avatar's templates in
// the order they were made, and an older one never overwrites a newer.
type unstoredTemplates struct {
	mu sync.Mutex
	of map[string]*unstoredTemplate
	// writing are those taken out for a write that has not ended.
	writing map[string]bool
}

// keep holds u for the avatar after a failed write at now, or while an
// older one waits; a newer template replaces an older one, keeping an
// enrollment's audit record still to write.
func (us *unstoredTemplates) keep(avatarID string, u *unstoredTemplate, now time.Time) {
	us.mu.Lock()
	defer us.mu.Unlock()
	us.keepLocked(avatarID, u, now)
}

func (us *unstoredTemplates) keepLocked(avatarID string, u *unstoredTemplate, now time.Time) {
	if us.of == nil {
		us.of = map[string]*unstoredTemplate{}
	}
	if old, ok := us.of[avatarID]; ok {
		u.tries = max(u.tries, old.tries)
		if old.enrolled && !u.enrolled {
			u.enrolled, u.since, u.session = true, old.since, old.session
		}
	}
	u.failed(now, 0)
	us.of[avatarID] = u
}

// waiting tells whether the avatar has a template waiting or being
// written: a newer one must then wait behind it.
func (us *unstoredTemplates) waiting(avatarID string) bool {
	us.mu.Lock()
	defer us.mu.Unlock()
	_, ok := us.of[avatarID]
	return ok || us.writing[avatarID]
}

// drop forgets the avatar's unstored template: it was deleted.
func (us *unstoredTemplates) drop(avatarID string) {
	us.mu.Lock()
	defer us.mu.Unlock()
	delete(us.of, avatarID)
}

// due takes out the templates due at now, by avatar, for writing; each
// is then ended with wrote or failed.
func (us *unstoredTemplates) due(now time.Time) map[string]*unstoredTemplate {
	us.mu.Lock()
	defer us.mu.Unlock()
	out := map[string]*unstoredTemplate{}
	for id, u := range us.of {
		if !now.Before(u.next) {
			out[id] = u
			delete(us.of, id)
			if us.writing == nil {
				us.writing = map[string]bool{}
			}
			us.writing[id] = true
		}
	}
	return out
}

// wrote ends a write taken out by due that stored its template, or found
// it void.
func (us *unstoredTemplates) wrote(avatarID string) {
	us.mu.Lock()
	defer us.mu.Unlock()
	delete(us.writing, avatarID)
}

// failed ends a write taken out by due that failed at now: u waits again,
// unless a newer template joined meanwhile, which then carries u's owed
// audit record.
func (us *unstoredTemplates) failed(avatarID string, u *unstoredTemplate, now time.Time) {
	us.mu.Lock()
	defer us.mu.Unlock()
	delete(us.writing, avatarID)
	if newer, ok := us.of[avatarID]; ok {
		if u.enrolled && !newer.enrolled {
			newer.enrolled, newer.since, newer.session = true, u.since, u.session
		}
		return
	}
	us.keepLocked(avatarID, u, now)
}

func (us *unstoredTemplates) count() int {
	us.mu.Lock()
	defer us.mu.Unlock()
	return len(us.of) + len(us.writing)
}

// storeTemplate stores a template a stream of the session enrolled or
// adapted, or keeps it to store again; since is as in unstoredTemplate.
func (s *Service) storeTemplate(ctx context.Context, avatarID, sessionID string, t *biometrics.Template, enrolled bool, since time.Time) {
	u := &unstoredTemplate{t: t, since: since, enrolled: enrolled, session: sessionID}
	if s.unstored.waiting(avatarID) {
		s.unstored.keep(avatarID, u, s.deps.Clock.Now())
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), xrStoreTimeout)
	defer cancel()
	err := s.templates.PutUnlessDeletedSince(ctx, avatarID, t, since)
	switch {
	case errors.Is(err, biometrics.ErrTemplateVoid):
		s.log.Info("biometric template not stored: the avatar deleted its template since", "avatar", avatarID, "enrolled", enrolled)
		return
	case err != nil:
		s.unstored.keep(avatarID, u, s.deps.Clock.Now())
		s.log.Error("store biometric template; storing it again", "avatar", avatarID, "enrolled", enrolled, "err", err)
		return
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

// storeOnce tries to store u again, unless the avatar deleted a template
// since u's consent, which voids it.
func (s *Service) storeOnce(parent context.Context, avatarID string, u *unstoredTemplate) {
	ctx, cancel := context.WithTimeout(parent, xrStoreTimeout)
	defer cancel()
	err := s.templates.PutUnlessDeletedSince(ctx, avatarID, u.t, u.since)
	if errors.Is(err, biometrics.ErrTemplateVoid) {
		s.unstored.wrote(avatarID)
		s.log.Info("biometric template not stored: the avatar deleted its template since", "avatar", avatarID, "enrolled", u.enrolled)
		return
	}
	if err != nil {
		s.unstored.failed(avatarID, u, s.deps.Clock.Now())
		if parent.Err() == nil {
			s.log.Warn("biometric template still not stored; storing it again", "avatar", avatarID, "tries", u.tries, "err", err)
		}
		return
	}
	s.unstored.wrote(avatarID)
	s.log.Info("biometric template stored after the store did not answer", "avatar", avatarID, "enrolled", u.enrolled, "tries", u.tries)
	if u.enrolled {
		s.auditEnrolled(ctx, avatarID, u.session, u.t)
	}
}
