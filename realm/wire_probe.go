package realm

import (
	"crypto/ecdsa"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/realm/internal/probe"
)

// The tests that start realms from outside this package read a node's
// internals through probe, which only packages under realm/ can import.
func init() {
	probe.Of = func(node any) probe.Node {
		r := node.(*Realm)
		return probe.Node{
			Avatars: r.avatars,
			Audit:   r.view,
			Catalog: r.catalog,
			XR:      r.xr,
			GatewayFeedAges: func() []time.Duration {
				var ages []time.Duration
				for _, g := range r.twins.Gateways().Simulated() {
					ages = append(ages, g.FeedAge())
				}
				return ages
			},
			ZoneOf: func(sceneID, avatarID, sessionID string) string {
				return r.live.WhereIs(sceneID, avatarID, sessionID).Zone
			},
			Origins: r.origins, PeersHeard: r.live.PeersHeard,
			LivePeers: func() []string { return r.nodes.Others(r.live.Peers()) },
			Sessions:  r.sessions,
			NATS:      r.nc,
			Embedded:  r.embedded,
			GrantKey:  func() common.Address { return r.twins.GrantKey() },
			Prefix:    r.cfg.Prefix, RingKey: func() *ecdsa.PrivateKey { return r.keys.Active },
			SignCluster: func(msg *nats.Msg, subject string) { r.clusterAuth.Sign(msg, subject, r.cfg.Clock.Now()) },
			Ledger:      r.market.Ledger, Dispatcher: r.twins.Dispatcher, AgentRevocations: r.agents.Revocations,
			StopBeforeStoringCommand: r.twinAPI.StopBeforeStoring, StopApprovalAt: r.approvalQueue.StopAt,
		}
	}
}
