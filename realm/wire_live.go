package realm

import (
	"context"
	"net/http"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/trust"
)

// The XR edge (realm/internal/live/xr), wired: what it needs of the realm
// comes through the small adapters below.

// startXR prepares the node's XR edge.
func (r *Realm) startXR(ctx context.Context) error {
	svc, err := xr.New(ctx, xr.Deps{
		Log:      r.log,
		Store:    r.store,
		Registry: r.metrics.registry,
		Config: xr.Config{
			Biometrics:      r.cfg.Biometrics,
			TemplateKeyFile: r.cfg.TemplateKeyFile,
			DataDir:         r.cfg.DataDir,
			UDPPort:         r.cfg.WebRTCUDPPort,
			Enrollment:      r.cfg.XREnrollment,
			EnrollWithin:    r.cfg.XREnrollWithin,
		},
		Trust:    xrTrust{r.trust},
		Sessions: xrSessions{r.live},
		StepUps:  xrStepUps{r.stepups},
		Audit:    xrAuditor{r},
	})
	if err != nil {
		return err
	}
	r.xr = svc
	return nil
}

// startTemplateSync loads the cluster's templates and follows their
// changes in the background until bg ends.
func (r *Realm) startTemplateSync(ctx, bg context.Context) error {
	if err := r.xr.Start(ctx, bg); err != nil {
		return err
	}
	r.bgDone.Add(1)
	go func() { defer r.bgDone.Done(); r.xr.Run(bg) }()
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
	r.xr.Close()
}

// xrAfterPasskey tells the XR edge of a passkey assertion (see
// xr.Service.AfterPasskey); the trust hub calls it from the start.
func (r *Realm) xrAfterPasskey(sessionID string, userVerified bool) {
	if r.xr != nil {
		r.xr.AfterPasskey(sessionID, userVerified)
	}
}

// closePeer closes the connection's WebRTC peer connection, if any.
func (c *liveConn) closePeer() {
	if c.motion != nil {
		c.motion.ClosePeer()
	}
}

// endXR is the end of a live connection's motion.
func (r *Realm) endXR(c *liveConn) {
	c.closed.Store(true)
	if c.motion != nil {
		c.motion.End()
	}
}

// xrConn is a live connection as the XR edge sees it.
type xrConn struct {
	c *liveConn
	r *Realm
}

func (x xrConn) Context() context.Context           { return x.c.ctx }
func (x xrConn) Session() session.Session           { return x.c.sess }
func (x xrConn) Closed() bool                       { return x.c.closed.Load() }
func (x xrConn) Used()                              { x.c.markUsed() }
func (x xrConn) Push(msg []byte)                    { x.c.push(msg) }
func (x xrConn) PushError(text string, always bool) { x.c.pushError(text, always) }

// Moved makes the newest frame where the avatar stands for the others in
// its scene: no separate pose message is needed while frames flow.
func (x xrConn) Moved(f biometrics.Frame) {
	if p, ok := framePose(f); ok {
		x.r.presence.pose(x.c, p)
	}
}

type xrTrust struct{ h *trustHub }

func (t xrTrust) Assess(ctx context.Context, sess session.Session) trust.Assessment {
	return t.h.assess(ctx, sess)
}

func (t xrTrust) Observe(ctx context.Context, sess session.Session, s trust.Signal) (trust.Assessment, error) {
	return t.h.observeMotion(ctx, sess, s)
}

type xrSessions struct{ h *liveHub }

func (s xrSessions) PushSession(sessionID string, msg []byte) { s.h.pushSession(sessionID, msg) }

func (s xrSessions) CloseSession(sessionID string, code int, reason string) int {
	return s.h.closeSession(sessionID, code, reason)
}

type xrStepUps struct{ p *stepUpProofs }

func (s xrStepUps) Consume(ctx context.Context, sessionID string, digest []byte) error {
	return s.p.consume(ctx, sessionID, digest)
}

type xrAuditor struct{ r *Realm }

func (a xrAuditor) Allow(req *http.Request, actor, action, resource, reason string, signals map[string]any) {
	a.r.auditAllow(req, actor, action, resource, reason, signals)
}

func (a xrAuditor) Deny(req *http.Request, actor, action, resource string, cause error) {
	a.r.auditDeny(req, actor, action, resource, cause)
}

func (a xrAuditor) Async(ctx context.Context, ev audit.Event) { a.r.auditAsync(ctx, ev) }
