package probe

import (
	"context"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/scenes"
)

// Node is what a test reads of a running realm node beyond its API. Each
// field is valid once the node is ready.
type Node struct {
	Avatars *avatar.Service
	Audit   *audit.View
	Catalog *scenes.Catalog
	XR      XR
	// Mint creates amount of an item for to, as the marketplace's own
	// issuer would.
	Mint func(ctx context.Context, coll, item string, to common.Address, amount uint64) error
	// GatewayFeedAges is how long ago each simulated twin gateway last
	// heard the revocation feed (negative when it never has).
	GatewayFeedAges func() []time.Duration
	// ZoneOf is the zone the node's presence sees the avatar's session in
	// ("" for none).
	ZoneOf func(sceneID, avatarID, sessionID string) string
}

// XR is what a test reads of a node's XR transports.
type XR interface {
	PeerConnections() int64
	StreamingSessions() []string
	StreamCounts(sessionID string) (accepted uint64, rejected map[string]uint64, ok bool)
	KnowsTemplate(avatarID string) bool
}

// Of reads node, a *realm.Realm; the realm package sets it.
var Of func(node any) Node
