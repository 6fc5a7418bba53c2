package xr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/trust"
)

// message is the part of the realm WebSocket's envelope (clients/PROTOCOL.md)
// that the XR edge sends: xr.status and xr.score, and webrtc.answer.
type message struct {
	Type string `json:"type"`
	XR   any    `json:"xr,omitempty"`
	SDP  string `json:"sdp,omitempty"`
}

func encodeMessage(m message) []byte {
	b, _ := json.Marshal(m)
	return b
}

// The background a node scores against before it has enrolled people of
// its own: synthetic people, each enrolled from a short session. A fixed
// seed gives every node the same prior.
const (
	xrPriorPeople = 24
	xrPriorMotion = 20 * time.Second
	xrPriorSeed   = 1_000_003
)

// xrPriors keeps the synthetic prior by the biometrics configuration it
// was computed for. The prior is a pure function of the constants above and
// that configuration, and every engine keeps its own copy of it, so all the
// realms a process starts (the many nodes of a test binary) share one
// computation instead of repeating it at each start.
var xrPriors struct {
	mu       sync.Mutex
	byConfig map[biometrics.Config][]biometrics.NamedTemplate
}

func xrPrior(cfg biometrics.Config) ([]biometrics.NamedTemplate, error) {
	key := cfg
	key.Logger = nil // where the computation logs does not change its result
	xrPriors.mu.Lock()
	defer xrPriors.mu.Unlock()
	if prior, ok := xrPriors.byConfig[key]; ok {
		return prior, nil
	}
	prior, err := synth.Prior(xrPriorPeople, xrPriorSeed, xrPriorMotion, cfg)
	if err != nil {
		return nil, err
	}
	if xrPriors.byConfig == nil {
		xrPriors.byConfig = map[biometrics.Config][]biometrics.NamedTemplate{}
	}
	xrPriors.byConfig[key] = prior
	return prior, nil
}

// openXR takes the session's stream on this node for a connection, or
// says why the node opens no new one; the first connection to stream sets
// it up: it loads the avatar's template, and starts an enrollment when the
// avatar has none and has just proved itself with a user-verified passkey.
func (s *Service) openXR(c Conn, now time.Time) (*sessionStream, *BusyError) {
	sess := c.Session()
	x, created, busy := s.reg.acquire(sess, &s.admit, now)
	if busy != nil {
		return nil, busy
	}
	if !created {
		return x, nil
	}
	defer x.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.Context(), xrStoreTimeout)
	defer cancel()
	avatarID := sess.Avatar
	tmpl, err := s.templates.Get(ctx, avatarID)
	absent := errors.Is(err, store.ErrNotFound)
	if err == nil {
		if s.reg.learn(avatarID) {
			s.engine.SetTemplate(avatarID, tmpl)
		}
		x.hasTemplate = true
	} else {
		tmpl = nil
	}
	x.stream = s.engine.NewStream(avatarID, tmpl)
	a := s.deps.Trust.Assess(ctx, sess)
	x.stream.SetTrusted(a.State == trust.Trusted)
	if err == nil {
		return x, nil
	}
	var consentAt time.Time
	if a.PasskeyAge >= 0 && a.PasskeyAge <= s.enrollWithin {
		consentAt = s.deps.Clock.Now().Add(-a.PasskeyAge)
	}
	if absent {
		err = s.beginUnenrolled(ctx, x, a.State, consentAt, now)
	}
	if err != nil {
		// Without knowing, neither score against nothing nor enroll over
		// a template that may exist: the stream only counts and checks
		// until a read again tells (settle.go).
		s.log.Warn("biometric template unknown: the stream counts and checks its motion until a read again tells",
			"session", x.id, "avatar", avatarID, "err", err)
		s.unsettle(x, !absent, consentAt, now)
	}
	return x, nil
}

// beginUnenrolled starts a stream of an avatar without a template: it
// resumes the session's enrollment set aside on this node or another
// (enrollshare.go), or starts one
// on consentAt's assertion (zero: none), if either may go on; an error is
// a store read that failed, and nothing was started. The caller holds
// x.mu.
func (s *Service) beginUnenrolled(ctx context.Context, x *sessionStream, state trust.State, consentAt, now time.Time) error {
	s.takeUpSetAside(ctx, x.id, x.sess.Avatar)
	if consentAt.IsZero() && !s.paused.holds(x.id) {
		return nil
	}
	deleted, err := s.templates.DeletedAt(ctx, x.sess.Avatar)
	if err != nil {
		return fmt.Errorf("read when the avatar's template was last deleted: %w", err)
	}
	s.enrollIfAllowed(x, state, deleted, consentAt, now)
	return nil
}

// enrollIfAllowed resumes the session's enrollment set aside, or starts
// one on consentAt's assertion, if either may go on now that the avatar
// last deleted a template at deleted (zero: never). The caller holds x.mu.
func (s *Service) enrollIfAllowed(x *sessionStream, state trust.State, deleted time.Time, consentAt, now time.Time) {
	if s.resumeEnrollment(x, state, deleted, now) {
		return
	}
	if !consentAt.IsZero() && consentsAfter(consentAt, deleted) {
		s.startEnrollment(x, consentAt)
	}
}

// resumeEnrollment takes up, in the session's new stream x, the
// enrollment its last stream set aside, here or (taken up from the store
// by takeUpSetAside) on another node, if there is one it
// may still go on with: set aside within EnrollWithin, on a session that
// is not suspended, with no template deletion (the last at deleted) since
// its consent. The caller holds x.mu.
func (s *Service) resumeEnrollment(x *sessionStream, state trust.State, deleted, now time.Time) bool {
	p, ok, delta := s.paused.take(x.id)
	s.m.stateBytes.Add(float64(delta))
	if !ok {
		return false
	}
	why := p.whyNotResume(now, s.enrollWithin, state)
	if why == "" && !consentsAfter(p.consentAt, deleted) {
		why = "the avatar deleted a template after the passkey assertion that consented to it"
	}
	if why != "" {
		s.m.enrollments.WithLabelValues("not-resumed").Inc()
		s.log.Info("biometric enrollment set aside is not resumed", "session", x.id, "avatar", x.sess.Avatar, "reason", why)
		return false
	}
	if err := x.stream.ResumeEnrollment(p.en); err != nil {
		s.log.Error("resume biometric enrollment", "session", x.id, "avatar", x.sess.Avatar, "err", err)
		return false
	}
	x.consentAt = p.consentAt
	s.m.enrollments.WithLabelValues("resumed").Inc()
	setAsideOn := "this node"
	if p.elsewhere {
		setAsideOn = "another node"
	}
	s.log.Info("biometric enrollment resumed", "session", x.id, "avatar", x.sess.Avatar, "set_aside_on", setAsideOn,
		"windows", p.en.Collected(), "of", p.en.Want(), "paused", now.Sub(p.closedAt).Round(time.Millisecond))
	return true
}

// setAsideEnrollment keeps the enrollment in progress of the session's
// stream, which is closing, for its next stream, on this node or, through
// the store, another; the caller holds x.mu.
func (s *Service) setAsideEnrollment(x *sessionStream, now time.Time) {
	en := x.stream.SetAsideEnrollment()
	if en == nil {
		return
	}
	p := pausedEnrollment{en: en, avatar: x.sess.Avatar, consentAt: x.consentAt, closedAt: now}
	s.shareSetAside(x.id, &p)
	delta := s.paused.put(x.id, p, s.enrollWithin)
	s.m.stateBytes.Add(float64(delta))
	s.m.enrollments.WithLabelValues("set-aside").Inc()
	s.log.Debug("biometric enrollment set aside", "session", x.id, "avatar", x.sess.Avatar, "windows", en.Collected(), "of", en.Want())
}

// linkStream is the link's stream, opened at its first frames if the node
// admits it. Nil with a nil *BusyError is a link that has ended; with
// one, frames the node refuses, or drops until the refusal's retry time.
func (s *Service) linkStream(l *Link, now time.Time) (*sessionStream, *BusyError) {
	if x := l.x.Load(); x != nil {
		return x, nil
	}
	l.openMu.Lock()
	defer l.openMu.Unlock()
	if x := l.x.Load(); x != nil || l.ended {
		return x, nil
	}
	if r := l.refused; r != nil && now.Before(l.retryAt) {
		again := *r
		again.RetryAfter = l.retryAt.Sub(now)
		return nil, &again
	}
	x, busy := s.openXR(l.c, now)
	if busy != nil {
		l.refused, l.retryAt = busy, now.Add(busy.RetryAfter)
		s.m.refused.WithLabelValues(busy.Cause).Inc()
		s.log.Debug("XR stream refused", "session", l.c.Session().ID, "cause", busy.Cause, "reason", busy.Reason)
		return nil, busy
	}
	l.x.Store(x)
	return x, nil
}

// consentsAfter tells whether a passkey assertion made at asserted may
// consent to enrolling an avatar that last deleted a template at deleted
// (zero: never): the step-up that authorized a deletion must not enroll
// the same motion again the moment the headset reconnects, through this
// node or any other.
func consentsAfter(asserted, deleted time.Time) bool {
	return deleted.IsZero() || asserted.After(deleted)
}

// startEnrollment starts collecting the avatar's template on the session's
// stream; the caller holds x.mu.
func (s *Service) startEnrollment(x *sessionStream, consentAt time.Time) {
	x.stream.StartEnrollment(s.enroll)
	x.consentAt = consentAt
	s.m.enrollments.WithLabelValues("started").Inc()
	s.log.Info("biometric enrollment started", "session", x.id, "avatar", x.sess.Avatar, "motion", s.enroll)
}

// AfterPasskey is told of every passkey assertion the realm verified for
// a session (sign-in or step-up): a user-verified one enrolls an avatar
// without a template, if its session already streams here. A session that
// starts streaming later is enrolled when its stream opens.
func (s *Service) AfterPasskey(sessionID string, userVerified bool) {
	if !userVerified || s == nil {
		return
	}
	x := s.reg.session(sessionID)
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	now := s.deps.Clock.Now()
	if u := x.unsettled; u != nil {
		// Whether the avatar has a template is not known yet: the
		// assertion consents to the enrollment the stream starts if a
		// read again finds none.
		u.consentAt, u.consentUntil = now, now.Add(s.enrollWithin)
		return
	}
	if x.stream != nil && !x.released && !x.hasTemplate && !x.stream.Enrolling() {
		s.startEnrollment(x, now)
	}
}

// ingestFrames takes one binary frame message from either transport. It
// runs on the connection's reader goroutine or the data channel's, once
// per message, so everything here is cheap and allocation-free on the
// common path.
func (s *Service) ingestFrames(l *Link, transport string, msg []byte, held time.Duration, stamped bool) {
	c := l.c
	m := s.m
	if c.Closed() {
		m.message(transport, "session-closed")
		return
	}
	now := s.deps.Clock.Now()
	x, busy := s.linkStream(l, now)
	if busy != nil {
		// Dropped unread: decoding them would spend what the node lacks.
		m.message(transport, "node-busy")
		c.PushBusy(busy)
		return
	}
	if x == nil {
		m.message(transport, "session-closed")
		return
	}

	x.mu.Lock()
	locked := true
	defer func() {
		if p := recover(); p != nil {
			if locked {
				x.mu.Unlock()
			}
			s.xrPanic(x, p)
		}
	}()
	frames, rejects, err := biometrics.Decode(msg, x.frames[:0])
	if err != nil {
		locked = false
		x.mu.Unlock()
		m.message(transport, "malformed")
		c.PushError(fmt.Sprintf("binary message refused: %v (frame format: clients/PROTOCOL.md)", err), false)
		return
	}
	x.frames = frames[:0]
	if !x.allow(now, len(frames)) {
		locked = false
		x.mu.Unlock()
		m.message(transport, "rate-limited")
		m.frames.WithLabelValues(transport, "rate-limited").Add(float64(len(frames)))
		c.PushError(fmt.Sprintf("more than %d frames a second: frames dropped", xrMaxFrameRate), false)
		return
	}
	x.transport = transport
	for _, rj := range rejects {
		x.decodeRejected[rj.Reason]++
		m.frames.WithLabelValues(transport, rj.Reason).Inc()
	}
	var newest biometrics.Frame
	moved := len(frames) > 0
	if moved {
		newest = frames[len(frames)-1]
	}
	pushed := time.Now()
	var events []biometrics.Event
	late, byOffsets := held, !stamped
	if stamped {
		m.socketQueue.Observe(held.Seconds())
		events = x.stream.PushReceived(frames, now.Add(-held), now)
	} else {
		// Read from a socket without the kernel's stamp (a data channel
		// on the shared UDP port among them): dated by the read, and no
		// wait to measure.
		events = x.stream.Push(frames, now)
	}
	if !stamped || transport == transportWebRTC {
		// How late the stream runs is what its offsets say where no
		// stamp measures a wait, and also over a data channel: its stamp
		// is its newest datagram's, which says nothing of frames its
		// flow control holds back at the sender while the node reads
		// late; they arrive late rather than wait in the socket. Asked
		// only of a node that is behind, the only one that sheds.
		if behind, _ := s.admit.behind(now); behind {
			if climb := x.stream.Late(); climb > late {
				late, byOffsets = climb, true
			}
		}
	}
	scored := false
	for _, ev := range events {
		switch {
		case ev.Kind == biometrics.EventScore && !scored:
			// The frames that completed a window: its features, embedding
			// and score against the template.
			m.scoring.Observe(time.Since(pushed).Seconds())
			scored = true
		case ev.Kind == biometrics.EventEnrolled:
			// The stream scores against its new template from the next
			// window on: the status below says so, not "not-enrolled",
			// which would ask the client for a new passkey assertion
			// (templateEvent, after the lock, stores the template). An
			// adapted template was the stream's already.
			x.hasTemplate = true
		}
	}
	var status []byte
	if statusDue(now.Sub(x.lastStatus), scored, x.hasTemplate) {
		status = s.status(x, now)
	}
	locked = false
	x.mu.Unlock()
	m.message(transport, "ok")
	if status != nil && !scored {
		s.deps.Sessions.PushSession(x.id, status)
		status = nil
	}
	if moved {
		// The newest frame is where the avatar stands for the others in
		// its scene: no separate pose message is needed while frames flow.
		c.Moved(newest)
	}
	for _, ev := range events {
		s.xrEvent(c, x, ev, newest, &status) // the score takes the status with it
	}
	if status != nil {
		s.deps.Sessions.PushSession(x.id, status) // its score was refused
	}
	if late >= shedAfterWait {
		s.shedIfBehind(l, transport, late, byOffsets, now)
	}
}

// status settles the stream's store state if due, adds its counts to the
// node's metrics and encodes its xr.status message; the caller holds
// x.mu. Once a second per stream, in a function of its own: its locals
// (the stream's counts, the message) would otherwise sit in the frame
// of every message's ingestion, beneath every window the stream scores.
//
//go:noinline
func (s *Service) status(x *sessionStream, now time.Time) []byte {
	x.lastStatus = now
	s.maybeSettle(x, now)
	st := x.stream.Stats()
	s.sync(x, st)
	return encodeMessage(message{Type: "xr.status", XR: x.statusView(now, st)})
}

// shedIfBehind closes the link's stream when the node is behind and this
// stream runs late by at least shedAfterWait, at the pace shedPace
// allows: the client is told node-busy, as a refused new stream is, and
// its session's trust is untouched; it has no motion evidence until it
// streams again, here once the node has room or on another node. Over a
// stamped socket, late is the wait the kernel measured, and a client
// cannot make another's socket look late, only add load, as any client
// does, within its rate limit. Over a data channel whose sockets are
// stamped, it is the wait since the newest datagram of its peer
// connection arrived (never more than the message's own, and a client
// can only shorten it, for its own stream, by sending datagrams more
// often), or how far the stream's own offsets climbed, whichever is
// more, since the channel's flow control keeps frames waiting at the
// sender instead. Unstamped (the shared UDP port), it is that climb
// alone. With byOffsets, late is the climb: a client can only make its
// own stream look late, and have it shed instead of judged, while the
// node is behind.
func (s *Service) shedIfBehind(l *Link, transport string, late time.Duration, byOffsets bool, now time.Time) {
	behind, lag := s.admit.behind(now)
	if !behind {
		return
	}
	// A climb the node's read lag does not explain is what the clock
	// check judges as a slow device. One that has come within a fifth of
	// that check's limit sheds its stream whatever the pace: its evidence
	// is long too late, and kept a few seconds more it would suspend an
	// honest session for the node's lateness.
	unpaced := byOffsets && late-s.engine.ReadLag() >= s.engine.ClockClimbLimit()*4/5
	if !unpaced && !s.admit.shed.take(now, s.admit.open.Load()) {
		return
	}
	var how string
	switch {
	case byOffsets:
		how = fmt.Sprintf("this stream's frames arrive %s later than they did at best", late.Round(time.Millisecond))
	case transport == transportWebRTC:
		how = fmt.Sprintf("this stream's frames waited %s or more in its sockets and data channel before the node could read them", late.Round(time.Millisecond))
	default:
		how = fmt.Sprintf("this stream's frames waited %s in its socket before the node could read them", late.Round(time.Millisecond))
	}
	busy := &BusyError{Cause: BusyBehind, RetryAfter: shedRetry(l.c.Session().ID),
		Reason: fmt.Sprintf("this node is behind its XR streams by %s, and %s: the node closed the stream so that it can keep up with the others",
			lag.Round(time.Millisecond), how)}
	if !l.shed(busy, now) {
		return
	}
	s.m.shed.Inc()
	s.log.Debug("XR stream shed", "session", l.c.Session().ID, "late", late, "by_offsets", byOffsets, "unpaced", unpaced, "lag", lag)
	l.c.PushBusy(busy)
}

// xrPanic contains a panic on the frame path: frames are untrusted input
// to a lot of arithmetic, and one session's bad motion must not stop the
// node. The session's connections here are closed, which frees its stream;
// the client reconnects to a fresh one.
func (s *Service) xrPanic(x *sessionStream, p any) {
	s.log.Error("panic while ingesting XR frames; closing the session's connections", "session", x.id, "avatar", x.sess.Avatar, "panic", p, "stack", string(debug.Stack()))
	s.m.message(x.transport, "panic")
	s.deps.Sessions.CloseSession(x.id, websocket.CloseInternalServerErr, "internal error while reading motion; reconnect")
}

// xrEvent turns what a stream reported into trust evidence, a stored
// template or an audit record. Each kind has a function of its own: the
// reader of a stream runs it, once a second, at the bottom of the
// deepest stack the reader has, and one frame holding the locals of
// every kind (2.2 KiB) took that stack past 8 KiB, so that the runtime
// kept 16 KiB for every stream.
//
// A score's message takes *status with it, when there is one, and clears
// it (statusDue).
func (s *Service) xrEvent(c Conn, x *sessionStream, ev biometrics.Event, newest biometrics.Frame, status *[]byte) {
	switch ev.Kind {
	case biometrics.EventScore:
		s.scoreEvent(c, x, &ev, &newest, status)
	case biometrics.EventLiveness:
		s.livenessEvent(c, x, ev)
	case biometrics.EventEnrolled, biometrics.EventAdapted:
		s.templateEvent(c, x, ev)
	}
}

// scoreEvent is a window's score: trust evidence, and the xr.score
// message that tells the client.
//
//go:noinline
func (s *Service) scoreEvent(c Conn, x *sessionStream, ev *biometrics.Event, newest *biometrics.Frame, status *[]byte) {
	s.m.events.WithLabelValues("score").Inc()
	a, err := s.deps.Trust.Observe(c.Context(), c.Session(), trust.BiometricMatch{At: ev.At, Probability: ev.Probability})
	if err != nil {
		s.refusedEvidence("biometric", x, err)
		return
	}
	x.setTrusted(a.State == trust.Trusted)
	s.pushScore(x, ev, newest, a.State, a.Score, status)
}

// pushScore tells the session's connections a window's score, with the
// stream's status when *status holds one (then cleared): queued
// together, the two leave in one write.
//
//go:noinline
func (s *Service) pushScore(x *sessionStream, ev *biometrics.Event, newest *biometrics.Frame, state trust.State, score float64, status *[]byte) {
	msg := encodeMessage(message{Type: "xr.score", XR: xrScore{
		At: ev.At.UTC(), Seq: newest.Seq, TimeUS: newest.TimeUS, Probability: ev.Probability, State: string(state), Score: score,
	}})
	if *status == nil {
		s.deps.Sessions.PushSession(x.id, msg)
		return
	}
	s.deps.Sessions.PushSession(x.id, *status, msg)
	*status = nil
}

// refusedEvidence logs evidence the session's trust tracker refused.
//
//go:noinline
func (s *Service) refusedEvidence(kind string, x *sessionStream, err error) {
	s.log.Warn(kind+" evidence refused", "session", x.id, "err", err)
}

// livenessEvent is motion that is not live: logged, and trust evidence.
//
//go:noinline
func (s *Service) livenessEvent(c Conn, x *sessionStream, ev biometrics.Event) {
	s.m.events.WithLabelValues("liveness").Inc()
	attrs := []any{"session", x.id, "avatar", x.sess.Avatar, "reason", ev.Reason}
	if ev.Detail != "" {
		attrs = append(attrs, "detail", ev.Detail)
	}
	s.log.Warn("XR motion is not live", attrs...)
	a, err := s.deps.Trust.Observe(c.Context(), c.Session(), trust.Liveness{At: ev.At, Live: false, Reason: ev.Reason})
	if err != nil {
		s.refusedEvidence("liveness", x, err)
		return
	}
	x.setTrusted(a.State == trust.Trusted)
}

// templateEvent is a template the stream enrolled or adapted: the
// engine learns it, and the store keeps it.
//
//go:noinline
func (s *Service) templateEvent(c Conn, x *sessionStream, ev biometrics.Event) {
	enrolled := ev.Kind == biometrics.EventEnrolled
	kind := "adapted"
	if enrolled {
		kind = "enrolled"
	}
	s.m.events.WithLabelValues(kind).Inc()
	since := ev.Template.Created
	if enrolled {
		// ingestFrames marked the template as the stream's, under the
		// lock, before it made the message's status.
		x.mu.Lock()
		since = x.consentAt
		x.mu.Unlock()
	}
	s.reg.learn(x.sess.Avatar) // the stream gave the engine its template
	if enrolled {
		// The avatar's other sessions streaming here without it.
		s.adoptStored(map[string]*biometrics.Template{x.sess.Avatar: ev.Template})
	}
	s.storeTemplate(c.Context(), x.sess.Avatar, x.id, ev.Template, enrolled, since)
}

// setTrusted tells the session's stream whether the session is trusted, so
// that its template adapts only then.
func (x *sessionStream) setTrusted(trusted bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stream != nil {
		x.stream.SetTrusted(trusted)
	}
}

// xrScore is the xr field of an xr.score message.
type xrScore struct {
	At          time.Time `json:"at"`
	Seq         uint32    `json:"seq"`
	TimeUS      uint64    `json:"time_us"`
	Probability float64   `json:"probability"`
	State       string    `json:"state"`
	Score       float64   `json:"score"`
}

// xrStatus is the xr field of an xr.status message.
type xrStatus struct {
	At             time.Time         `json:"at"`
	Transport      string            `json:"transport"`
	FramesAccepted uint64            `json:"frames_accepted"`
	FramesRejected map[string]uint64 `json:"frames_rejected"`
	Enrollment     string            `json:"enrollment"`
	// EnrollmentProgress is the share of the enrollment's motion
	// collected, while it is collected: it goes on where it stopped when
	// a stream comes back (enrollpause.go).
	EnrollmentProgress *float64 `json:"enrollment_progress,omitempty"`
}

// statusView is the session's counts from the stream's st; the caller
// holds x.mu.
func (x *sessionStream) statusView(now time.Time, st biometrics.StreamStats) xrStatus {
	rejected := make(map[string]uint64, len(x.decodeRejected)+len(st.FramesRejected))
	for k, v := range x.decodeRejected {
		rejected[k] += v
	}
	for k, v := range st.FramesRejected {
		rejected[k] += v
	}
	v := xrStatus{At: now.UTC(), Transport: x.transport, FramesAccepted: st.FramesAccepted, FramesRejected: rejected, Enrollment: x.enrollment()}
	if st.Enrolling {
		progress := float64(st.EnrollCollected) / float64(st.EnrollWant)
		v.EnrollmentProgress = &progress
	}
	return v
}

// enrollment names the enrollment state; the caller holds x.mu.
func (x *sessionStream) enrollment() string {
	switch {
	case x.stream != nil && x.stream.Enrolling():
		return enrollmentCollecting
	case x.hasTemplate:
		return enrollmentDone
	case x.unsettled != nil && x.unsettled.template:
		return enrollmentUnknown
	default:
		return enrollmentNone
	}
}

// sync adds what the stream counted since the last sync to the node's
// metrics. Reading a stream's counters copies maps, so it happens once a
// second per stream rather than per message; the caller holds x.mu.
func (s *Service) sync(x *sessionStream, st biometrics.StreamStats) {
	t := x.transport
	if t == "" {
		t = TransportWebSocket
	}
	s.m.accepted[t].Add(float64(st.FramesAccepted - x.synced.FramesAccepted))
	for reason, n := range st.FramesRejected {
		if d := n - x.synced.FramesRejected[reason]; d > 0 {
			s.m.frames.WithLabelValues(t, reason).Add(float64(d))
		}
	}
	s.m.windows.Add(float64(st.WindowsScored - x.synced.WindowsScored))
	s.m.thinned.Add(float64(st.WindowsThinned - x.synced.WindowsThinned))
	s.m.stateBytes.Add(float64(st.StateBytes - x.synced.StateBytes))
	if d := st.EnrollmentsAbandoned - x.synced.EnrollmentsAbandoned; d > 0 {
		// The stream ended its enrollment at motion that failed a
		// liveness check (the liveness event says which).
		s.m.enrollments.WithLabelValues("abandoned").Add(float64(d))
		s.log.Warn("biometric enrollment abandoned: its motion is not live; a user-verified passkey assertion starts another",
			"session", x.id, "avatar", x.sess.Avatar)
	}
	x.synced = st
}
