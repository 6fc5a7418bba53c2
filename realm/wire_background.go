package realm

import (
	"context"
	"fmt"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/realm/internal/peerbackground"
)

// The exchange of biometric background statistics with other realms
// (realm/internal/peerbackground), wired: it reads and feeds the XR
// edge's biometric engine, signs with a key derived from the node's ring,
// and records its decisions in the audit log.

// startBackgroundExchange prepares the node's side of the exchange once
// the XR edge has its engine, and fetches the peers in the background
// until bg ends.
func (r *Realm) startBackgroundExchange(ctx, bg context.Context) error {
	seed, err := assets.DeriveSeed(r.keys.Active, assets.BackgroundKeyLabel)
	if err != nil {
		return fmt.Errorf("realm: background exchange key: %w", err)
	}
	var previous []byte
	if r.keys.Previous != nil {
		if previous, err = assets.DeriveSeed(r.keys.Previous, assets.BackgroundKeyLabel); err != nil {
			return fmt.Errorf("realm: previous background exchange key: %w", err)
		}
	}
	svc, err := peerbackground.New(ctx, r.cfg.Background, peerbackground.Deps{
		Log: r.log, Realm: r.cfg.RPID, Node: r.cfg.Node, Seed: seed, PreviousSeed: previous, RealmSeed: r.xr.ExchangeSeed(), RetiredRealmSeeds: r.xr.RetiredExchangeSeeds(),
		Engine: r.xr.Engine(), Store: r.store, Audit: r.decisions,
		Registry: r.monitor.Registry(), Clock: r.cfg.Clock,
	})
	if err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	r.peerBackground = svc
	if len(r.cfg.Background.Peers) > 0 || len(r.cfg.Background.Readers) > 0 {
		r.log.Info("background exchange", "peers", len(r.cfg.Background.Peers), "readers", len(r.cfg.Background.Readers),
			"realm_verifier_key", svc.RealmVerifierKey(), "node_verifier_key", svc.VerifierKey())
	}
	r.bgDone.Go(func() { svc.Run(bg) })
	return nil
}

// BackgroundVerifierKey is the note verifier key of this node's own
// background key, which signs its background statistics, and its
// requests for a peer's, beside the realm's (as `zerorealm keys
// export-public` prints it).
func (r *Realm) BackgroundVerifierKey() string { return r.peerBackground.VerifierKey() }

// BackgroundRealmVerifierKey is the note verifier key of the realm's
// background key, the same on every node: what other realms pin.
func (r *Realm) BackgroundRealmVerifierKey() string { return r.peerBackground.RealmVerifierKey() }
