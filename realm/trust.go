package realm

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
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/trust"
)

// trustHub keeps one trust tracker per live session on this node, and the
// evidence behind it in the "trust" bucket so that any node can rebuild a
// session's tracker (a load balancer may send the next request elsewhere)
// and read its current state.
//
// Lock order: trustHub.mu, then nothing: callbacks run after it is released.
type trustHub struct {
	engine *trust.Engine
	bucket *store.Bucket
	audit  *audit.Log
	log    *slog.Logger
	now    func() time.Time
	// onChange is told of every state change, to push it to the session's
	// live connections.
	onChange func(sessionID string, a trust.Assessment)
	// onSuspended is told of an avatar whose trust became suspended, to
	// stop its agents too.
	onSuspended func(ctx context.Context, avatarID string)
	// onPasskey is told of every passkey assertion observed, so that a
	// user-verified one can start a biometric enrollment.
	onPasskey func(sessionID string, userVerified bool)

	mu       sync.Mutex
	trackers map[string]*sessionTrust
}

type sessionTrust struct {
	tracker *trust.Tracker
	avatar  string

	// mu guards evidence, the session's record as this node last wrote it,
	// so each write carries all of it without reading it back.
	mu       sync.Mutex
	evidence trustRecord
}

// trustRecord is what the bucket holds per session: the evidence a tracker
// is rebuilt from, and the last assessment for other nodes to read.
type trustRecord struct {
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

type passkeySeen struct {
	At             time.Time `json:"at"`
	UserVerified   bool      `json:"uv"`
	BackupEligible bool      `json:"be"`
	BackedUp       bool      `json:"bs"`
	Attested       bool      `json:"attested"`
	Credential     string    `json:"credential"` // base64url id
}

func newTrustHub(ctx context.Context, st *store.Store, lifetime time.Duration, log *audit.Log, logger *slog.Logger) (*trustHub, error) {
	engine, err := trust.New(trust.Config{})
	if err != nil {
		return nil, err
	}
	bucket, err := st.Bucket(ctx, store.BucketConfig{Name: "trust", TTL: lifetime + time.Hour, Sealed: true})
	if err != nil {
		return nil, err
	}
	return &trustHub{
		engine: engine, bucket: bucket, audit: log, log: logger, now: time.Now,
		trackers: map[string]*sessionTrust{},
	}, nil
}

// tracker returns the session's tracker, rebuilding it from the bucket when
// this node has not seen the session yet.
func (h *trustHub) tracker(ctx context.Context, sess session.Session) *sessionTrust {
	h.mu.Lock()
	st, ok := h.trackers[sess.ID]
	h.mu.Unlock()
	if ok {
		return st
	}
	st = &sessionTrust{tracker: h.engine.NewTracker(), avatar: sess.Avatar, evidence: trustRecord{Avatar: sess.Avatar}}
	if e, err := h.bucket.Get(ctx, sess.ID); err == nil {
		var rec trustRecord
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

func (p *passkeySeen) signal() trust.PasskeyAssertion {
	return trust.PasskeyAssertion{At: p.At, UserVerified: p.UserVerified, BackupEligible: p.BackupEligible, BackedUp: p.BackedUp, Attested: p.Attested, Credential: p.Credential}
}

// observePasskey records a passkey assertion (sign-in or step-up) as
// evidence for the session.
func (h *trustHub) observePasskey(ctx context.Context, sess session.Session, seen passkeySeen) (trust.Assessment, error) {
	st := h.tracker(ctx, sess)
	a, err := st.tracker.Observe(seen.signal())
	if err != nil {
		return a, err
	}
	h.persist(ctx, sess.ID, st, a, func(r *trustRecord) { r.LastPasskey = &seen })
	h.changed(ctx, sess.ID, st.avatar, a)
	if h.onPasskey != nil {
		h.onPasskey(sess.ID, seen.UserVerified)
	}
	return a, nil
}

// observeSignIn records the context of a new session: where it comes from
// and how many other sessions the avatar holds, which the trust algorithm
// penalizes beyond the first.
func (h *trustHub) observeSignIn(ctx context.Context, sess session.Session, address string, concurrent int) {
	st := h.tracker(ctx, sess)
	a, err := st.tracker.Observe(trust.ContextChange{At: h.now(), ConcurrentSessions: concurrent})
	if err != nil {
		h.log.Warn("observe sign-in context", "session", sess.ID, "err", err)
		return
	}
	h.persist(ctx, sess.ID, st, a, func(r *trustRecord) { r.Address = address })
	h.changed(ctx, sess.ID, st.avatar, a)
}

// observeAddress notes a request from a client address other than the one
// the session signed in from: a token used from somewhere else is worth a
// step-up until the person re-asserts the passkey.
func (h *trustHub) observeAddress(ctx context.Context, sess session.Session, address string) {
	st := h.tracker(ctx, sess)
	st.mu.Lock()
	known := st.evidence.Address
	st.mu.Unlock()
	if known == "" || address == "" || address == known {
		return
	}
	a, err := st.tracker.Observe(trust.ContextChange{At: h.now(), AddressChanged: true})
	if err != nil {
		h.log.Warn("observe address change", "session", sess.ID, "err", err)
		return
	}
	h.changed(ctx, sess.ID, st.avatar, a)
}

// observeClone suspends a session whose avatar's credential was cloned.
func (h *trustHub) observeClone(ctx context.Context, sess session.Session, credential string) {
	st := h.tracker(ctx, sess)
	a, err := st.tracker.Observe(trust.CredentialCloned{At: h.now(), Credential: credential})
	if err != nil {
		h.log.Error("observe clone", "session", sess.ID, "err", err)
		return
	}
	h.persist(ctx, sess.ID, st, a, func(r *trustRecord) { r.Cloned = credential })
	h.changed(ctx, sess.ID, st.avatar, a)
}

// assess is the session's trust now.
func (h *trustHub) assess(ctx context.Context, sess session.Session) trust.Assessment {
	st := h.tracker(ctx, sess)
	a := st.tracker.Assess()
	h.changed(ctx, sess.ID, st.avatar, a)
	return a
}

// forget drops a session's tracker when it ends on this node.
func (h *trustHub) forget(sessionID string) {
	h.mu.Lock()
	delete(h.trackers, sessionID)
	h.mu.Unlock()
}

// persist records the session's evidence, amended by change, with the
// assessment, for other nodes to rebuild the tracker from and to read the
// state. The record is this node's copy in full, so nothing is read back;
// a concurrent write by another node serving the same session can only
// replace evidence with evidence, and the next observation rewrites it.
func (h *trustHub) persist(ctx context.Context, sessionID string, st *sessionTrust, a trust.Assessment, change func(*trustRecord)) {
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
		h.log.Warn("persist trust", "session", sessionID, "err", err)
	}
}

// changed audits and announces a state change.
func (h *trustHub) changed(ctx context.Context, sessionID, avatarID string, a trust.Assessment) {
	if !a.Changed {
		return
	}
	outcome, reasons := audit.Allow, []string{a.Explain()}
	if a.State != trust.Trusted {
		outcome = audit.Deny
	}
	if err := h.audit.Record(ctx, audit.Event{
		Actor:    avatarID,
		Action:   "AssessTrust",
		Resource: fmt.Sprintf("Session::%q", sessionID),
		Outcome:  outcome,
		Reasons:  reasons,
		Signals:  map[string]any{"trust": a.Context(), "previous": string(a.Previous)},
	}); err != nil {
		h.log.Error("audit trust change", "session", sessionID, "err", err)
	}
	if h.onChange != nil {
		h.onChange(sessionID, a)
	}
	if a.State == trust.Suspended && h.onSuspended != nil {
		h.onSuspended(ctx, avatarID)
	}
}

// run re-assesses every tracked session once a second, so decay turns into
// a state change (and a push to the client) without waiting for a request.
func (h *trustHub) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
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
}
