package realm

import (
	"context"

	"github.com/zerorealm/zerorealm/realm/internal/identity"
	"github.com/zerorealm/zerorealm/realm/internal/live"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
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
			PublicIPs:       r.cfg.WebRTCPublicIPs,
			Node:            r.cfg.Node,
			Enrollment:      r.cfg.XREnrollment,
			EnrollWithin:    r.cfg.XREnrollWithin,
			MaxStreams:      r.cfg.MaxXRStreams,
			CPUReserve:      r.cfg.XRCPUReserve,
			ThinBelow:       r.cfg.XRThinBelow,
		},
		Trust:    r.trust,
		Sessions: liveSessions{r},
		StepUps:  r.stepups,
		Audit:    r.decisions,
		Clock:    r.cfg.Clock,
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
		Views:        identity.Views{},
		Motion:       motion,
		Clock:        r.cfg.Clock,
		Serving:      ctx,
	})
	r.monitor.CountSceneMembers(r.live.MembersByScene)
	return nil
}

// runLive subscribes the live edge to the cluster and loads the cluster's
// templates, then runs both in the background until bg ends.
func (r *Realm) runLive(ctx, bg context.Context) error {
	if err := r.live.Start(); err != nil {
		return err
	}
	r.bgDone.Go(func() { r.live.Run(bg) })
	if err := r.xr.Start(ctx, bg); err != nil {
		return err
	}
	r.bgDone.Go(func() { r.xr.Run(bg) })
	return nil
}

// liveSessions reaches the live edge, which is made after the XR edge that
// needs it.
type liveSessions struct{ r *Realm }

func (s liveSessions) PushSession(sessionID string, msgs ...[]byte) {
	s.r.live.PushSession(sessionID, msgs...)
}

func (s liveSessions) CloseSession(sessionID string, code int, reason string) int {
	return s.r.live.CloseSession(sessionID, code, reason)
}
