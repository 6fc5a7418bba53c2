package xr

import (
	"context"
	"errors"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/trust"
)

// A stream's first frames read two things from the store: the avatar's
// template and, for an avatar without one that may enroll, when a template
// of it was last deleted. Either read can fail (a node so far behind that
// its store calls time out, JetStream electing a leader), and unknown is
// never taken for absent: a stream that cannot tell neither scores
// against nothing nor enrolls over a template that may exist. But unknown
// is not an answer either. A stream that could not read is unsettled: it
// counts and checks its motion and reads again, on a backoff, until it
// knows, and then goes on as if it had known from the start. Before, such
// a stream stayed without its template, or without its enrollment, for
// the rest of its life (111 of 2,500 avatars of one load run, whose node
// answered its store calls more than 5 s late for a few seconds).

// unsettled is what a stream could not read when it opened.
type unsettled struct {
	// template: the template itself is unknown. Otherwise the avatar has
	// none, and only when one was last deleted is unknown.
	template bool
	// consentAt is the user-verified passkey assertion that may start an
	// enrollment once the stream knows the avatar has no template (zero:
	// none), until consentUntil. A stream keeps the consent it opened
	// with for EnrollWithin after it opened, however long it took to
	// settle within that; an assertion made meanwhile consents afresh.
	consentAt, consentUntil time.Time
	// retry is when it reads again.
	retry
	// reading: a read is on its way (Service.settle).
	reading bool
}

// consent is the assertion that consents to an enrollment at now, or zero.
func (u *unsettled) consent(now time.Time) time.Time {
	if u.consentAt.IsZero() || now.After(u.consentUntil) {
		return time.Time{}
	}
	return u.consentAt
}

// unsettle marks x unsettled after a read that failed at now; the caller
// holds x.mu.
func (s *Service) unsettle(x *sessionStream, template bool, consentAt, now time.Time) {
	u := &unsettled{template: template}
	if !consentAt.IsZero() {
		u.consentAt, u.consentUntil = consentAt, now.Add(s.enrollWithin)
	}
	u.failed(now, spreadOf(x.id))
	x.unsettled = u
	s.m.templateUnknown.WithLabelValues("at-open").Inc()
}

// maybeSettle starts a read for x if it is unsettled and its time has
// come; the caller holds x.mu. The read runs on a goroutine of its own,
// since a store call on the frame path would hold the connection's
// frames, and every other stream's that shares the reader, for as long
// as the store is slow.
func (s *Service) maybeSettle(x *sessionStream, now time.Time) {
	u := x.unsettled
	if u == nil || u.reading || now.Before(u.next) {
		return
	}
	u.reading = s.settling.start(func() { s.settle(x) })
}

// settle reads what x could not read when it opened and, if the reads
// answer, goes on as openXR would have: a template found is adopted, and
// an avatar without one resumes or starts its enrollment if it may. A
// read that fails again schedules another. The reads run without x.mu,
// so that the stream's frames go on meanwhile.
func (s *Service) settle(x *sessionStream) {
	ctx, cancel := context.WithTimeout(s.stop, xrStoreTimeout)
	defer cancel()
	avatarID := x.sess.Avatar
	x.mu.Lock()
	wantTemplate := x.unsettled != nil && x.unsettled.template
	x.mu.Unlock()

	var tmpl *biometrics.Template
	var err error
	if wantTemplate {
		if tmpl, err = s.templates.Get(ctx, avatarID); errors.Is(err, store.ErrNotFound) {
			tmpl, err = nil, nil
		}
	}
	var deleted time.Time
	var state trust.State
	if err == nil && tmpl == nil {
		if deleted, err = s.templates.DeletedAt(ctx, avatarID); err == nil {
			state = s.deps.Trust.Assess(ctx, x.sess).State
			s.takeUpSetAside(ctx, x.id, avatarID)
		}
	}

	x.mu.Lock()
	defer x.mu.Unlock()
	now := s.deps.Clock.Now()
	u := x.unsettled
	if x.released || u == nil {
		// Closed meanwhile, or settled by the template feed.
		return
	}
	if err != nil {
		u.reading = false
		u.failed(now, spreadOf(x.id))
		s.m.templateUnknown.WithLabelValues("read-again").Inc()
		if s.stop.Err() == nil {
			s.log.Warn("biometric template still unknown; reading it again", "session", x.id, "avatar", avatarID,
				"tries", u.tries, "again_in", u.next.Sub(now).Round(time.Millisecond), "err", err)
		}
		return
	}
	x.unsettled = nil
	if tmpl != nil {
		if err := x.stream.AdoptTemplate(tmpl); err != nil {
			// Only a stream with a template or an enrollment refuses one,
			// and an unsettled stream starts neither.
			s.log.Error("adopt the biometric template read again", "session", x.id, "avatar", avatarID, "err", err)
			return
		}
		if s.reg.learn(avatarID) {
			s.engine.SetTemplate(avatarID, tmpl)
		}
		x.hasTemplate = true
		s.m.templateUnknown.WithLabelValues("found").Inc()
		s.log.Info("biometric template read again: the stream scores its wearer", "session", x.id, "avatar", avatarID)
		return
	}
	s.enrollIfAllowed(x, state, deleted, u.consent(now), now)
	s.m.templateUnknown.WithLabelValues("none").Inc()
	s.log.Info("biometric template read again: the avatar has none", "session", x.id, "avatar", avatarID, "enrolling", x.stream.Enrolling())
}

// adoptStored gives every stream on this node that has no template, and
// is not collecting one, its avatar's template in templates, by avatar:
// the avatar enrolled through another node, or through another session
// here, or the stream could not read the template when it opened. A
// stream that is collecting its own enrollment keeps collecting it.
func (s *Service) adoptStored(templates map[string]*biometrics.Template) {
	for _, x := range s.reg.all() {
		t := templates[x.sess.Avatar]
		if t == nil {
			continue
		}
		x.mu.Lock()
		if !x.released && x.stream != nil && !x.hasTemplate && !x.stream.Enrolling() && x.stream.AdoptTemplate(t) == nil {
			x.hasTemplate = true
			if x.unsettled != nil {
				x.unsettled = nil
				s.m.templateUnknown.WithLabelValues("found").Inc()
			}
			s.log.Info("biometric template adopted by a stream that opened without it", "session", x.id, "avatar", x.sess.Avatar)
		}
		x.mu.Unlock()
	}
}
