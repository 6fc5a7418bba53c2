package realm

import (
	"context"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/identity"
	"github.com/zerorealm/zerorealm/realm/internal/live"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/trust"
)

// The live edge (realm/internal/live: the realm WebSocket, presence) and
// its XR transports (realm/internal/live/xr), wired: what they need of the
// realm comes through the small adapters below.

// startLive prepares the live edge and the XR edge it carries; runLive
// starts them once the node's other parts run.
func (r *Realm) startLive(ctx context.Context) error {
	motion, err := xr.New(ctx, xr.Deps{
		Log:      r.log,
		Store:    r.store,
		Registry: r.monitor.Registry(),
		Config: xr.Config{
			Biometrics:      r.cfg.Biometrics,
			TemplateKeyFile: r.cfg.TemplateKeyFile,
			DataDir:         r.cfg.DataDir,
			UDPPort:         r.cfg.WebRTCUDPPort,
			Node:            r.cfg.Node,
			Enrollment:      r.cfg.XREnrollment,
			EnrollWithin:    r.cfg.XREnrollWithin,
		},
		Trust:    r.trust,
		Sessions: liveSessions{r},
		StepUps:  r.stepups,
		Audit:    r.decisions,
	})
	if err != nil {
		return err
	}
	r.xr = motion
	r.live = live.New(live.Deps{
		Log:          r.log,
		Node:         r.cfg.Node,
		Prefix:       r.cfg.Prefix,
		NC:           r.nc,
		Origins:      r.origins,
		MaxPerAvatar: r.cfg.MaxLivePerAvatar,
		SessionIdle:  r.cfg.SessionIdle,
		Sessions:     r.sessions,
		Avatars:      r.avatars,
		Scenes:       r.catalog,
		Trust:        r.trust,
		Decider:      r.decisions,
		Cluster:      r.clusterAuth,
		Forged:       r.tampers.Forged,
		Views:        liveViews{},
		Motion:       motion,
	})
	return nil
}

// runLive subscribes the live edge to the cluster and loads the cluster's
// templates, then runs both in the background until bg ends.
func (r *Realm) runLive(ctx, bg context.Context) error {
	if err := r.live.Start(); err != nil {
		return err
	}
	r.bgDone.Add(1)
	go func() { defer r.bgDone.Done(); r.live.Run(bg) }()
	if err := r.xr.Start(ctx, bg); err != nil {
		return err
	}
	r.bgDone.Add(1)
	go func() { defer r.bgDone.Done(); r.xr.Run(bg) }()
	return nil
}

// followRevocations closes the live connections of every session revoked
// anywhere in the cluster, with their WebRTC peer connections, and its
// twin consoles. Every node runs it, so a sign-out through one node ends
// the session's WebSocket and data channel on another.
func (r *Realm) followRevocations(revocations <-chan session.Revocation) {
	for rev := range revocations {
		n := r.live.CloseSession(rev.SessionID, edge.CloseSessionEnded, "session revoked: "+rev.Reason)
		n += r.twinAPI.CloseSession(rev.SessionID, "session revoked: "+rev.Reason)
		if n > 0 {
			r.log.Info("closed revoked session's connections", "session", rev.SessionID, "connections", n, "reason", rev.Reason)
		}
		r.trust.Forget(rev.SessionID)
	}
}

// closeSessionRevoked is the close code of a socket whose session ended.
const closeSessionRevoked = edge.CloseSessionEnded

// liveSessions reaches the live edge, which is made after the XR edge that
// needs it.
type liveSessions struct{ r *Realm }

func (s liveSessions) PushSession(sessionID string, msg []byte) { s.r.live.PushSession(sessionID, msg) }

func (s liveSessions) CloseSession(sessionID string, code int, reason string) int {
	return s.r.live.CloseSession(sessionID, code, reason)
}

// liveViews are the identity part's published views.
type liveViews struct{}

func (liveViews) Session(s session.Session) map[string]any { return identity.SessionView(s) }
func (liveViews) Avatar(av *avatar.Avatar) map[string]any  { return identity.AvatarView(av) }
func (liveViews) Trust(a trust.Assessment) map[string]any  { return identity.TrustView(a) }
