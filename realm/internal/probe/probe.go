package probe

import (
	"crypto/ecdsa"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/nats-io/nats.go"
	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
)

// Node is what a test reads of a running realm node beyond its API. Each
// field is valid once the node is ready.
type Node struct {
	Avatars *avatar.Service
	Audit   *audit.View
	Catalog *scenes.Catalog
	XR      XR
	// GatewayFeedAges is how long ago each simulated twin gateway last
	// heard the revocation feed (negative when it never has).
	GatewayFeedAges func() []time.Duration
	// ZoneOf is the zone the node's presence sees the avatar's session in
	// ("" for none).
	ZoneOf func(sceneID, avatarID, sessionID string) string
	// Origins are the page origins the node accepts passkeys for.
	Origins func() []string
	// LivePeers are the nodes this one hears on the cluster.
	LivePeers func() []string
	// PeersHeard is when, on the node's clock, its presence last heard
	// each other node it has not taken for dead.
	PeersHeard func() map[string]time.Time
	Sessions   *session.Manager
	// NATS is the node's own connection; Embedded its embedded server
	// (nil on a cluster).
	NATS     *nats.Conn
	Embedded *natsembed.Embedded
	// GrantKey signs the node's twin command grants (zero when it runs
	// no twins).
	GrantKey func() common.Address
	// Prefix is what the node's subjects, streams and buckets begin with.
	Prefix string
	// SignCluster signs msg for subject as a node of the cluster does
	// the core NATS messages nodes act on: a test that stands in for a
	// node holds the cluster key like one.
	SignCluster func(msg *nats.Msg, subject string)
	// Ledger is the marketplace's ledger and its read model; its
	// Signer signs the node's receipts.
	Ledger func() *assets.Ledger
	// RingKey is the node's active ring key, which signs root
	// delegations among what it signs.
	RingKey func() *ecdsa.PrivateKey
	// Dispatcher signs and delivers the node's twin command grants.
	Dispatcher func() *twin.Dispatcher
	// AgentRevocations is the cluster's list of revoked delegations,
	// agents and owners.
	AgentRevocations func() *agents.Revocations
	// StopBeforeStoringCommand sets the stop point of a node that dies
	// after a twin's gateway answered a command and before the answer is
	// stored under its Idempotency-Key: for each key stop says so for
	// (given the answer's status and body), the request ends with no
	// answer and nothing stored. nil clears it.
	StopBeforeStoringCommand func(stop func(key string, status int, body []byte) bool)
	// StopApprovalAt sets the stop point of a node that dies while it runs
	// an agent's action its owner approved: before its executor (ran
	// false) or after it, before the outcome is stored (ran true)
	// (approval.Queue.StopAt). nil clears it.
	StopApprovalAt func(stop func(p approval.Pending, ran bool) bool)
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
