package realm

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/keyfile"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/trust"
)

// The background a node scores against before it has enrolled people of
// its own: synthetic people, each enrolled from a short session. A fixed
// seed gives every node the same prior.
const (
	xrPriorPeople = 24
	xrPriorMotion = 20 * time.Second
	xrPriorSeed   = 1_000_003
)

// startXR prepares the node's XR edge: the biometrics engine with its
// prior, the template store, the WebRTC API and the metrics.
func (r *Realm) startXR(ctx context.Context) error {
	bcfg := r.cfg.Biometrics
	if bcfg.Logger == nil {
		bcfg.Logger = r.log.With("component", "biometrics")
	}
	prior, err := synth.Prior(xrPriorPeople, xrPriorSeed, xrPriorMotion, bcfg)
	if err != nil {
		return fmt.Errorf("realm: biometric prior: %w", err)
	}
	engine, err := biometrics.NewEngine(bcfg, prior...)
	if err != nil {
		return fmt.Errorf("realm: biometrics: %w", err)
	}
	keyFile := r.cfg.TemplateKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(r.cfg.DataDir, templateKeyFile)
	}
	key, err := keyfile.LoadOrCreate(keyFile, "template key")
	if err != nil {
		return fmt.Errorf("realm: %w (deleting the file orphans every template)", err)
	}
	templates, err := biometrics.NewTemplateStore(ctx, r.store, key)
	if errors.Is(err, biometrics.ErrKeyMismatch) {
		return fmt.Errorf("realm: %s: %w; every node of a cluster seals templates under one key: copy the key file of a node that already serves this cluster here (or point --template-key at it)", keyFile, err)
	}
	if err != nil {
		return fmt.Errorf("realm: template store: %w", err)
	}
	api, closeMux, err := newWebRTCAPI(r.cfg.WebRTCUDPPort, r.log)
	if err != nil {
		return err
	}
	r.xr = &xrHub{
		api: api, closeMux: closeMux, engine: engine, templates: templates,
		enroll: r.cfg.XREnrollment, enrollWithin: r.cfg.XREnrollWithin,
		sessions: map[string]*xrSession{}, known: map[string]bool{},
	}
	r.xr.m = newXRMetrics(r.metrics.registry, r.xr)
	return nil
}

// stopXR closes every peer connection and the shared UDP socket, so no
// frame reaches a stream after the stores behind it are gone.
func (r *Realm) stopXR() {
	if r.xr == nil || r.live == nil {
		return
	}
	r.live.mu.Lock()
	var conns []*liveConn
	for _, list := range r.live.conns {
		conns = append(conns, list...)
	}
	r.live.mu.Unlock()
	for _, c := range conns {
		c.closed.Store(true)
		c.closePeer()
	}
	if err := r.xr.closeMux(); err != nil {
		r.log.Warn("close WebRTC UDP port", "err", err)
	}
}

// endXR is the end of a live connection: its peer connection closes and
// it lets go of the session's stream; the last connection closes it.
func (r *Realm) endXR(c *liveConn) {
	c.closed.Store(true)
	c.closePeer()
	c.xrOnce.Do(func() {}) // no stream is taken after this
	x := c.xr
	if x == nil || !r.xr.release(x) {
		return
	}
	x.mu.Lock()
	if x.stream != nil {
		r.xr.sync(x, x.stream.Stats())
		r.xr.m.stateBytes.Sub(float64(x.synced.StateBytes))
		x.stream.Close()
	}
	x.mu.Unlock()
}

// openXR takes the session's stream on this node for a connection; the
// first connection to stream sets it up: it loads the avatar's template,
// and starts an enrollment when the avatar has none and has just proved
// itself with a user-verified passkey.
func (r *Realm) openXR(c *liveConn) *xrSession {
	x, created := r.xr.acquire(c.sess)
	if !created {
		return x
	}
	defer x.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.ctx, xrStoreTimeout)
	defer cancel()
	avatarID := c.sess.Avatar
	tmpl, err := r.xr.templates.Get(ctx, avatarID)
	switch {
	case err == nil:
		if r.xr.learn(avatarID) {
			r.xr.engine.SetTemplate(avatarID, tmpl)
		}
		x.hasTemplate = true
	case errors.Is(err, store.ErrNotFound):
		tmpl = nil
	default:
		// Without knowing, neither score against nothing nor enroll over
		// a template that may exist: the stream only counts and checks.
		r.log.Error("load biometric template", "avatar", avatarID, "err", err)
		tmpl = nil
	}
	x.stream = r.xr.engine.NewStream(avatarID, tmpl)
	a := r.trust.assess(ctx, c.sess)
	x.stream.SetTrusted(a.State == trust.Trusted)
	if tmpl == nil && errors.Is(err, store.ErrNotFound) && a.PasskeyAge >= 0 && a.PasskeyAge <= r.xr.enrollWithin &&
		r.assertedSinceDeletion(ctx, avatarID, time.Now().Add(-a.PasskeyAge)) {
		r.startEnrollment(x)
	}
	return x
}

// assertedSinceDeletion tells whether a passkey assertion made at asserted
// may consent to enrolling the avatar: always, unless the avatar deleted a
// template since. The step-up that authorized a deletion must not enroll
// the same motion again the moment the headset reconnects, through this
// node or any other. Unknown is no.
func (r *Realm) assertedSinceDeletion(ctx context.Context, avatarID string, asserted time.Time) bool {
	deleted, err := r.xr.templates.DeletedAt(ctx, avatarID)
	if err != nil {
		r.log.Error("read when the biometric template was deleted; not enrolling", "avatar", avatarID, "err", err)
		return false
	}
	return deleted.IsZero() || asserted.After(deleted)
}

// startEnrollment starts collecting the avatar's template on the session's
// stream; the caller holds x.mu.
func (r *Realm) startEnrollment(x *xrSession) {
	x.stream.StartEnrollment(r.xr.enroll)
	x.enrolling = true
	r.log.Info("biometric enrollment started", "session", x.id, "avatar", x.sess.Avatar, "motion", r.xr.enroll)
}

// xrAfterPasskey is told of every passkey assertion the realm verified for
// a session (sign-in or step-up): a user-verified one enrolls an avatar
// without a template, if its session already streams here. A session that
// starts streaming later is enrolled when its stream opens.
func (r *Realm) xrAfterPasskey(sessionID string, userVerified bool) {
	if !userVerified || r.xr == nil {
		return
	}
	x := r.xr.session(sessionID)
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stream != nil && !x.hasTemplate && !x.enrolling {
		r.startEnrollment(x)
	}
}

// ingestFrames takes one binary frame message from either transport. It
// runs on the connection's reader goroutine or the data channel's, once
// per message, so everything here is cheap and allocation-free on the
// common path.
func (r *Realm) ingestFrames(c *liveConn, transport string, msg []byte) {
	m := r.xr.m
	if c.closed.Load() {
		m.message(transport, "session-closed")
		return
	}
	c.xrOnce.Do(func() { c.xr = r.openXR(c) })
	x := c.xr
	if x == nil {
		m.message(transport, "session-closed")
		return
	}
	now := time.Now()

	x.mu.Lock()
	locked := true
	defer func() {
		if p := recover(); p != nil {
			if locked {
				x.mu.Unlock()
			}
			r.xrPanic(x, p)
		}
	}()
	frames, rejects, err := biometrics.Decode(msg, x.frames[:0])
	if err != nil {
		locked = false
		x.mu.Unlock()
		m.message(transport, "malformed")
		c.pushError(fmt.Sprintf("binary message refused: %v (frame format: clients/PROTOCOL.md)", err), false)
		return
	}
	x.frames = frames[:0]
	if !x.allow(now, len(frames)) {
		locked = false
		x.mu.Unlock()
		m.message(transport, "rate-limited")
		m.frames.WithLabelValues(transport, "rate-limited").Add(float64(len(frames)))
		c.pushError(fmt.Sprintf("more than %d frames a second: frames dropped", xrMaxFrameRate), false)
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
	events := x.stream.Push(frames, now)
	var status []byte
	if now.Sub(x.lastStatus) >= xrStatusEvery {
		x.lastStatus = now
		st := x.stream.Stats()
		r.xr.sync(x, st)
		status = encodeLive(liveMessage{Type: "xr.status", XR: x.statusView(now, st)})
	}
	locked = false
	x.mu.Unlock()
	m.message(transport, "ok")
	if status != nil {
		r.live.pushSession(x.id, status)
	}
	if moved {
		// The newest frame is where the avatar stands for the others in
		// its scene: no separate pose message is needed while frames flow.
		if p, ok := framePose(newest); ok {
			r.presence.pose(c, p)
		}
	}
	for _, ev := range events {
		r.xrEvent(c, x, ev, newest)
	}
}

// xrPanic contains a panic on the frame path: frames are untrusted input
// to a lot of arithmetic, and one session's bad motion must not stop the
// node. The session's connections here are closed, which frees its stream;
// the client reconnects to a fresh one.
func (r *Realm) xrPanic(x *xrSession, p any) {
	r.log.Error("panic while ingesting XR frames; closing the session's connections", "session", x.id, "avatar", x.sess.Avatar, "panic", p, "stack", string(debug.Stack()))
	r.xr.m.message(x.transport, "panic")
	r.live.closeSession(x.id, websocket.CloseInternalServerErr, "internal error while reading motion; reconnect")
}

// xrEvent turns what a stream reported into trust evidence, a stored
// template or an audit record.
func (r *Realm) xrEvent(c *liveConn, x *xrSession, ev biometrics.Event, newest biometrics.Frame) {
	m := r.xr.m
	switch ev.Kind {
	case biometrics.EventScore:
		m.events.WithLabelValues("score").Inc()
		a, err := r.trust.observeBiometric(c.ctx, c.sess, trust.BiometricMatch{At: ev.At, Probability: ev.Probability})
		if err != nil {
			r.log.Warn("biometric evidence refused", "session", x.id, "err", err)
			return
		}
		x.setTrusted(a.State == trust.Trusted)
		r.live.pushSession(x.id, encodeLive(liveMessage{Type: "xr.score", XR: xrScore{
			At: ev.At.UTC(), Seq: newest.Seq, TimeUS: newest.TimeUS, Probability: ev.Probability, State: string(a.State), Score: a.Score,
		}}))
	case biometrics.EventLiveness:
		m.events.WithLabelValues("liveness").Inc()
		r.log.Warn("XR motion is not live", "session", x.id, "avatar", x.sess.Avatar, "reason", ev.Reason)
		a, err := r.trust.observeLiveness(c.ctx, c.sess, trust.Liveness{At: ev.At, Live: false, Reason: ev.Reason})
		if err != nil {
			r.log.Warn("liveness evidence refused", "session", x.id, "err", err)
			return
		}
		x.setTrusted(a.State == trust.Trusted)
	case biometrics.EventEnrolled, biometrics.EventAdapted:
		enrolled := ev.Kind == biometrics.EventEnrolled
		kind := "adapted"
		if enrolled {
			kind = "enrolled"
		}
		m.events.WithLabelValues(kind).Inc()
		x.mu.Lock()
		x.hasTemplate, x.enrolling = true, false
		x.mu.Unlock()
		r.xr.learn(x.sess.Avatar) // the stream gave the engine its template
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), xrStoreTimeout)
		defer cancel()
		if err := r.xr.templates.Put(ctx, x.sess.Avatar, ev.Template); err != nil {
			r.log.Error("store biometric template", "avatar", x.sess.Avatar, "event", kind, "err", err)
			return
		}
		if enrolled {
			r.auditRecord(ctx, audit.Event{
				Actor: x.sess.Avatar, Action: "EnrollBiometrics", Resource: templateResource(x.sess.Avatar), Outcome: audit.Allow,
				Reasons: []string{"motion template collected right after a user-verified passkey assertion"},
				Signals: map[string]any{"session": x.id, "windows": ev.Template.Windows, "motion_s": r.xr.enroll.Seconds()},
			})
		}
	}
}

// setTrusted tells the session's stream whether the session is trusted, so
// that its template adapts only then.
func (x *xrSession) setTrusted(trusted bool) {
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
}

// statusView is the session's counts from the stream's st; the caller
// holds x.mu.
func (x *xrSession) statusView(now time.Time, st biometrics.StreamStats) xrStatus {
	rejected := make(map[string]uint64, len(x.decodeRejected)+len(st.FramesRejected))
	for k, v := range x.decodeRejected {
		rejected[k] += v
	}
	for k, v := range st.FramesRejected {
		rejected[k] += v
	}
	return xrStatus{At: now.UTC(), Transport: x.transport, FramesAccepted: st.FramesAccepted, FramesRejected: rejected, Enrollment: x.enrollment()}
}

// enrollment names the enrollment state; the caller holds x.mu.
func (x *xrSession) enrollment() string {
	switch {
	case x.enrolling:
		return enrollmentCollecting
	case x.hasTemplate:
		return enrollmentDone
	default:
		return enrollmentNone
	}
}

// sync adds what the stream counted since the last sync to the node's
// metrics. Reading a stream's counters copies maps, so it happens once a
// second per stream rather than per message; the caller holds x.mu.
func (h *xrHub) sync(x *xrSession, st biometrics.StreamStats) {
	t := x.transport
	if t == "" {
		t = transportWebSocket
	}
	h.m.accepted[t].Add(float64(st.FramesAccepted - x.synced.FramesAccepted))
	for reason, n := range st.FramesRejected {
		if d := n - x.synced.FramesRejected[reason]; d > 0 {
			h.m.frames.WithLabelValues(t, reason).Add(float64(d))
		}
	}
	h.m.windows.Add(float64(st.WindowsScored - x.synced.WindowsScored))
	h.m.stateBytes.Add(float64(st.StateBytes - x.synced.StateBytes))
	x.synced = st
}
