package xr

import (
	"fmt"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/trust"
)

// An enrollment whose stream closes before it finishes (the node shed the
// stream, or the headset lost its connection; one that moves from its
// data channel to the WebSocket keeps its stream) is set aside on the
// node for the session, and the session's next stream here takes it up:
// a person asked for a minute of motion gives it once, and a node that
// sheds enrolling streams while it catches up does not collect their
// motion again when they come back.
//
// Only the same session resumes it: the consent was that session's
// user-verified passkey assertion, so another session of the avatar (a
// second headset) starts its own. It is kept for EnrollWithin after the
// stream closed, the time a new consent has to start motion, and a
// template deletion since the consent voids it, as it would the consent.
// It is window statistics, never motion, held in memory and, sealed, in
// the cluster's store for the same time (enrollshare.go), so that a stream
// that comes back on another node goes on there.

// pausedEnrollment is a session's enrollment set aside when its stream
// closed.
type pausedEnrollment struct {
	en     *biometrics.Enrollment
	avatar string
	// consentAt is when the user-verified passkey assertion that started
	// it was made; closedAt when its stream closed.
	consentAt, closedAt time.Time
	// shared is its copy in the store, for another node (nil: none, as
	// for one taken from the store).
	shared *sharedAside
	// elsewhere: another node set it aside, and this one took it from
	// the store.
	elsewhere bool
}

// pausedEnrollments are the enrollments set aside on this node, by
// session.
type pausedEnrollments struct {
	mu sync.Mutex
	of map[string]pausedEnrollment
	// bytes is the memory they hold, for the node's stream-state gauge.
	bytes int
	// pruneAt is the count at which put next drops the expired ones, so
	// that pruning costs a constant per put however many are kept.
	pruneAt int
}

const minPausedPrune = 64

// put sets aside p for the session, dropping those kept longer than
// within, and returns the change in the memory held.
func (ps *pausedEnrollments) put(sessionID string, p pausedEnrollment, within time.Duration) (delta int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.of == nil {
		ps.of = map[string]pausedEnrollment{}
	}
	before := ps.bytes
	if old, ok := ps.of[sessionID]; ok {
		ps.drop(sessionID, old)
	}
	if len(ps.of) >= max(ps.pruneAt, minPausedPrune) {
		for id, old := range ps.of {
			if p.closedAt.Sub(old.closedAt) > within {
				ps.drop(id, old)
			}
		}
		ps.pruneAt = 2 * len(ps.of)
	}
	ps.of[sessionID] = p
	ps.bytes += p.en.Bytes()
	return ps.bytes - before
}

// take removes and returns the session's enrollment set aside, if any.
func (ps *pausedEnrollments) take(sessionID string) (p pausedEnrollment, ok bool, delta int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok = ps.of[sessionID]
	if !ok {
		return p, false, 0
	}
	before := ps.bytes
	ps.drop(sessionID, p)
	return p, true, ps.bytes - before
}

// holds tells whether the session has an enrollment set aside.
func (ps *pausedEnrollments) holds(sessionID string) bool {
	_, ok := ps.peek(sessionID)
	return ok
}

// unshare forgets that the session's enrollment set aside has a copy in
// the store, if it is still the one whose copy was sh: that copy was
// removed.
func (ps *pausedEnrollments) unshare(sessionID string, sh *sharedAside) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p, ok := ps.of[sessionID]; ok && p.shared == sh {
		p.shared = nil
		ps.of[sessionID] = p
	}
}

// peek returns the session's enrollment set aside, if any, keeping it.
func (ps *pausedEnrollments) peek(sessionID string) (pausedEnrollment, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.of[sessionID]
	return p, ok
}

// whyNotResume says why p may not go on in its session's new stream at
// now, with the session in state: "" when it may. The template deletions
// since its consent are checked apart, from the store.
func (p *pausedEnrollment) whyNotResume(now time.Time, within time.Duration, state trust.State) string {
	switch {
	case now.Sub(p.closedAt) > within:
		return fmt.Sprintf("its stream closed %s ago, over the %s an enrollment is kept", now.Sub(p.closedAt).Round(time.Second), within)
	case state == trust.Suspended:
		return "the session is suspended"
	}
	return ""
}

// dropAvatar forgets the avatar's enrollments set aside: its template was
// deleted, and with it the consents given before.
func (ps *pausedEnrollments) dropAvatar(avatarID string) (delta int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	before := ps.bytes
	for id, p := range ps.of {
		if p.avatar == avatarID {
			ps.drop(id, p)
		}
	}
	return ps.bytes - before
}

// drop removes one entry; the caller holds ps.mu.
func (ps *pausedEnrollments) drop(sessionID string, p pausedEnrollment) {
	delete(ps.of, sessionID)
	ps.bytes -= p.en.Bytes()
}
