package sessiontrust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/trust"
)

// Bucket is the name of the bucket that holds each session's evidence.
const Bucket = "trust"

// Auditor records a change of trust. The change has happened whether or
// not its record is stored yet, so the hub does not wait for it.
type Auditor interface {
	Record(ctx context.Context, ev audit.Event) error
}

// Deps is what the hub needs from the rest of the realm.
type Deps struct {
	// Store holds the trust bucket.
	Store *store.Store
	// SessionLifetime bounds how long a session's evidence is kept (plus
	// an hour).
	SessionLifetime time.Duration
	Audit           Auditor
	Log             *slog.Logger
	// Clock is read by every assessment (the score decays with time),
	// dates the context signals and paces the decay loop (Run); default
	// the system's.
	Clock clock.Clock
	// OnChange, when set, is told of every state change, to push it to
	// the session's live connections.
	OnChange func(sessionID string, a trust.Assessment)
	// OnSuspended, when set, is told of an avatar whose trust became
	// suspended, to stop its agents too.
	OnSuspended func(ctx context.Context, avatarID string)
	// OnPasskey, when set, is told of every passkey assertion observed, so
	// that a user-verified one can start a biometric enrollment.
	OnPasskey func(sessionID string, userVerified bool)
}

// Hub keeps one trust tracker per live session on this node.
//
// Lock order: Hub.mu, then nothing: the hooks run after it is released.
type Hub struct {
	engine *trust.Engine
	bucket *store.Bucket
	deps   Deps

	mu       sync.Mutex
	trackers map[string]*sessionTrust
}

type sessionTrust struct {
	tracker *trust.Tracker
	avatar  string

	// mu guards evidence, the session's record as this node last wrote it,
	// so each write carries all of it without reading it back.
	mu       sync.Mutex
	evidence record
}

// record is what the bucket holds per session: the evidence a tracker is
// rebuilt from, and the last assessment for other nodes to read.
type record struct {
	Avatar      string       `json:"avatar"`
	State       trust.State  `json:"state"`
	Score       float64      `json:"score"`
	At          time.Time    `json:"at"`
	LastPasskey *passkeySeen `json:"last_passkey,omitempty"`
	// Cloned names the credential caught cloned, if any.
	Cloned string `json:"cloned,omitempty"`
	// Address is the client address the session signed in from.
	Address string `json:"address,omitempty"`
}

// passkeySeen is a trust.PasskeyAssertion as the bucket stores it.
type passkeySeen struct {
	At             time.Time `json:"at"`
	UserVerified   bool      `json:"uv"`
	BackupEligible bool      `json:"be"`
	BackedUp       bool      `json:"bs"`
	Attested       bool      `json:"attested"`
	Credential     string    `json:"credential"` // base64url id
}

func (p *passkeySeen) signal() trust.PasskeyAssertion { return trust.PasskeyAssertion(*p) }

// Open opens the trust bucket and returns the hub.
func Open(ctx context.Context, deps Deps) (*Hub, error) {
	if deps.Store == nil || deps.Audit == nil || deps.Log == nil {
		return nil, errors.New("sessiontrust: a store, an auditor and a logger are required")
	}
	deps.Clock = clock.Or(deps.Clock)
	engine, err := trust.New(trust.Config{Clock: deps.Clock})
	if err != nil {
		return nil, fmt.Errorf("sessiontrust: %w", err)
	}
	bucket, err := deps.Store.Bucket(ctx, store.BucketConfig{Name: Bucket, TTL: deps.SessionLifetime + time.Hour, Sealed: true})
	if err != nil {
		return nil, fmt.Errorf("sessiontrust: %w", err)
	}
	return &Hub{engine: engine, bucket: bucket, deps: deps, trackers: map[string]*sessionTrust{}}, nil
}

// tracker returns the session's tracker, rebuilding it from the bucket when
// this node has not seen the session yet.
func (h *Hub) tracker(ctx context.Context, sess session.Session) *sessionTrust {
	h.mu.Lock()
	st, ok := h.trackers[sess.ID]
	h.mu.Unlock()
	if ok {
		return st
	}
	st = &sessionTrust{tracker: h.engine.NewTracker(), avatar: sess.Avatar, evidence: record{Avatar: sess.Avatar}}
	if e, err := h.bucket.Get(ctx, sess.ID); err == nil {
		var rec record
		if json.Unmarshal(e.Value, &rec) == nil {
			if rec.LastPasskey != nil {
				_, _ = st.tracker.Observe(rec.LastPasskey.signal())
			}
			if rec.Cloned != "" {
				_, _ = st.tracker.Observe(trust.CredentialCloned{At: rec.At, Credential: rec.Cloned})
			}
			st.evidence = rec
		}
	}
	h.mu.Lock()
	if existing, ok := h.trackers[sess.ID]; ok {
		st = existing // another request built it first
	} else {
		h.trackers[sess.ID] = st
	}
	h.mu.Unlock()
	return st
}

// ObservePasskey records a passkey assertion (sign-in or step-up) as
// evidence for the session.
func (h *Hub) ObservePasskey(ctx context.Context, sess session.Session, assertion trust.PasskeyAssertion) (trust.Assessment, error) {
	seen := passkeySeen(assertion)
	st := h.tracker(ctx, sess)
	a, err := st.tracker.Observe(seen.signal())
	if err != nil {
		return a, err
	}
	h.persist(ctx, sess.ID, st, a, func(r *record) { r.LastPasskey = &seen })
	h.changed(ctx, sess.ID, st.avatar, a)
	if h.deps.OnPasskey != nil {
		h.deps.OnPasskey(sess.ID, seen.UserVerified)
	}
	return a, nil
}

// ObserveSignIn records the context of a new session: where it comes from
// and how many other sessions the avatar holds, which the trust algorithm
// penalizes beyond the first.
func (h *Hub) ObserveSignIn(ctx context.Context, sess session.Session, address string, concurrent int) {
	st := h.tracker(ctx, sess)
	a, err := st.tracker.Observe(trust.ContextChange{At: h.deps.Clock.Now(), ConcurrentSessions: concurrent})
	if err != nil {
		h.deps.Log.Warn("observe sign-in context", "session", sess.ID, "err", err)
		return
	}
	h.persist(ctx, sess.ID, st, a, func(r *record) { r.Address = address })
	h.changed(ctx, sess.ID, st.avatar, a)
}

// ObserveAddress notes a request from a client address other than the one
// the session signed in from: a token used from somewhere else is worth a
// step-up until the person re-asserts the passkey.
func (h *Hub) ObserveAddress(ctx context.Context, sess session.Session, address string) {
	st := h.tracker(ctx, sess)
	st.mu.Lock()
	known := st.evidence.Address
	st.mu.Unlock()
	if known == "" || address == "" || address == known {
		return
	}
	a, err := st.tracker.Observe(trust.ContextChange{At: h.deps.Clock.Now(), AddressChanged: true})
	if err != nil {
		h.deps.Log.Warn("observe address change", "session", sess.ID, "err", err)
		return
	}
	h.changed(ctx, sess.ID, st.avatar, a)
}

// ObserveClone suspends a session whose avatar's credential was cloned.
func (h *Hub) ObserveClone(ctx context.Context, sess session.Session, credential string) {
	st := h.tracker(ctx, sess)
	a, err := st.tracker.Observe(trust.CredentialCloned{At: h.deps.Clock.Now(), Credential: credential})
	if err != nil {
		h.deps.Log.Error("observe clone", "session", sess.ID, "err", err)
		return
	}
	h.persist(ctx, sess.ID, st, a, func(r *record) { r.Cloned = credential })
	h.changed(ctx, sess.ID, st.avatar, a)
}

// Observe records what a session's XR stream found: a window's match
// probability (trust.BiometricMatch), or a failed liveness check
// (trust.Liveness; replayed or impossible motion is an attack, and
// suspends the session). Only a change of state is persisted and audited:
// scores arrive every second per stream, and the bucket keeps what a
// rebuild needs.
func (h *Hub) Observe(ctx context.Context, sess session.Session, s trust.Signal) (trust.Assessment, error) {
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

// Assess is the session's trust now.
func (h *Hub) Assess(ctx context.Context, sess session.Session) trust.Assessment {
	st := h.tracker(ctx, sess)
	a := st.tracker.Assess()
	h.changed(ctx, sess.ID, st.avatar, a)
	return a
}

// Forget drops a session's tracker when it ends on this node.
func (h *Hub) Forget(sessionID string) {
	h.mu.Lock()
	delete(h.trackers, sessionID)
	h.mu.Unlock()
}

// persist records the session's evidence, amended by change, with the
// assessment, for other nodes to rebuild the tracker from and to read the
// state. The record is this node's copy in full, so nothing is read back;
// a concurrent write by another node serving the same session can only
// replace evidence with evidence, and the next observation rewrites it.
func (h *Hub) persist(ctx context.Context, sessionID string, st *sessionTrust, a trust.Assessment, change func(*record)) {
	st.mu.Lock()
	if change != nil {
		change(&st.evidence)
	}
	st.evidence.State, st.evidence.Score, st.evidence.At = a.State, a.Score, a.At
	data, err := json.Marshal(st.evidence)
	st.mu.Unlock()
	if err == nil {
		_, err = h.bucket.Put(ctx, sessionID, data)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		h.deps.Log.Warn("persist trust", "session", sessionID, "err", err)
	}
}

// changed audits and announces a state change.
func (h *Hub) changed(ctx context.Context, sessionID, avatarID string, a trust.Assessment) {
	if !a.Changed {
		return
	}
	outcome, reasons := audit.Allow, []string{a.Explain()}
	if a.State != trust.Trusted {
		outcome = audit.Deny
	}
	if err := h.deps.Audit.Record(ctx, audit.Event{
		Actor:    avatarID,
		Action:   "AssessTrust",
		Resource: fmt.Sprintf("Session::%q", sessionID),
		Outcome:  outcome,
		Reasons:  reasons,
		Signals:  map[string]any{"trust": a.Context(), "previous": string(a.Previous)},
	}); err != nil {
		h.deps.Log.Error("audit trust change", "session", sessionID, "err", err)
	}
	if h.deps.OnChange != nil {
		h.deps.OnChange(sessionID, a)
	}
	if a.State == trust.Suspended && h.deps.OnSuspended != nil {
		h.deps.OnSuspended(ctx, avatarID)
	}
}

// Run re-assesses every tracked session once a second of the hub's clock
// until ctx ends, so decay turns into a state change (and a push to the
// client) without waiting for a request.
func (h *Hub) Run(ctx context.Context) {
	clock.Every(ctx, h.deps.Clock, time.Second, h.reassess)
}

// reassess assesses every tracked session once and acts on each change.
func (h *Hub) reassess(ctx context.Context) {
	h.mu.Lock()
	ids := make([]string, 0, len(h.trackers))
	for id := range h.trackers {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	for _, id := range ids {
		h.mu.Lock()
		st, ok := h.trackers[id]
		h.mu.Unlock()
		if !ok {
			continue
		}
		a := st.tracker.Assess()
		if a.Changed {
			h.persist(ctx, id, st, a, nil)
			h.changed(ctx, id, st.avatar, a)
		}
	}
}
