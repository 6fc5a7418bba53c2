package live

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
)

// Scenes finds the scenes this node serves (scenes.Catalog).
type Scenes interface {
	Scene(id string) (*scenes.Scene, bool)
	Scenes() []*scenes.Scene
}

// Trust reads a session's current trust assessment.
type Trust interface {
	Assess(ctx context.Context, sess session.Session) trust.Assessment
}

// Decider asks the scene's policies whether p may take action on resource,
// and audits the decision: joining a scene and entering a zone are
// decided, and the reason of a deny is what the client is told.
type Decider interface {
	// DecideEither decides for a person or an agent (decide.DecideEither):
	// an agent's delegation first, then the same policies.
	DecideEither(ctx context.Context, sc *scenes.Scene, p edge.Principal, a trust.Assessment, action string, resource policy.UID, extra map[string]any) policy.Decision
}

// ClusterAuth signs the presence messages this node sends the others, and
// checks theirs: anyone on NATS could otherwise claim to be a node.
type ClusterAuth interface {
	Sign(msg *nats.Msg, subject string, now time.Time)
	Verify(msg *nats.Msg, subject string, now time.Time) error
}

// Views are the representations a hello and a trust message carry, the
// same the HTTP API answers with.
type Views interface {
	Session(s session.Session) map[string]any
	Avatar(av *avatar.Avatar) map[string]any
	Trust(a trust.Assessment) map[string]any
}

// Motion gives each connection its XR link (xr.Service).
type Motion interface {
	Attach(c xr.Conn) *xr.Link
}

// Deps is what the live edge needs from the rest of the realm.
type Deps struct {
	Log *slog.Logger
	// Node names this node to the others; Prefix starts every subject.
	Node, Prefix string
	NC           *nats.Conn
	// Origins are the browser origins a WebSocket may be opened from.
	Origins func() []string
	// MaxPerAvatar bounds an avatar's connections on this node (0: none).
	MaxPerAvatar int
	// SessionIdle is the sessions' idle timeout: a socket its client
	// stopped using is closed when it is reached.
	SessionIdle time.Duration
	Sessions    edge.SessionRecords
	Avatars     edge.Avatars
	Scenes      Scenes
	Trust       Trust
	Decider     Decider
	Cluster     ClusterAuth
	// Forged counts a cluster message dropped because its tag did not
	// verify, by kind (scene, heartbeat, snapshot, takeover, notice).
	Forged func(kind string)
	Views  Views
	Motion Motion
	// Clock dates uses, stamps and presence, and ends idle sockets; nil
	// is the system's (internal/clock says which times read it).
	Clock clock.Clock
	// Serving ends when the realm stops, and with it every socket, told
	// so with a going-away close frame (nil: never). Sockets outlive the
	// requests that opened them, which the HTTP server ends.
	Serving context.Context
	// Agents tells whether an agent's delegation still stands; without
	// it, agents are refused the realm WebSocket (agents.go). BindAgents
	// sets it when the agents' guard has opened.
	Agents AgentStanding
}

// Service is one node's live edge: its realm WebSockets, indexed by
// session and avatar, and the presence of their avatars in scenes, shared
// with the other nodes.
type Service struct {
	deps     Deps
	log      *slog.Logger
	now      func() time.Time // deps.Clock's
	sockets  *sockets
	presence *presenceHub
	// subs are the cluster subscriptions Start made; Run ends them.
	subs []*nats.Subscription
}

// New prepares the live edge; Start subscribes it to the cluster.
func New(deps Deps) *Service {
	deps.Clock = clock.Or(deps.Clock)
	if deps.Serving == nil {
		deps.Serving = context.Background()
	}
	s := &Service{deps: deps, log: deps.Log, sockets: newSockets(), now: deps.Clock.Now}
	s.presence = &presenceHub{svc: s, log: deps.Log.With("component", "presence"), node: deps.Node, prefix: deps.Prefix,
		rooms: map[string]*sceneRoom{}, peers: map[string]*presencePeer{}}
	return s
}

// Start subscribes to the other nodes' presence, poses, heartbeats and
// snapshot requests, their announcements of new connections, and avatar
// notices. Run then runs the fan-out until its context ends.
func (s *Service) Start() error {
	subs, err := s.presence.subscribe()
	if err != nil {
		return err
	}
	s.subs = subs
	for _, start := range []func() (*nats.Subscription, error){s.subscribeTakeovers, s.subscribeNotices} {
		sub, err := start()
		if err != nil {
			s.unsubscribe()
			return err
		}
		s.subs = append(s.subs, sub)
	}
	return nil
}

func (s *Service) unsubscribe() {
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
}

// Run fans presence and poses out every tick until ctx ends; then it
// ends the cluster subscriptions and tells the other nodes that this
// node's members have left.
func (s *Service) Run(ctx context.Context) {
	// The fan-out is paced in real time; what it judges (peers gone
	// quiet) reads the realm's clock.
	clock.Every(ctx, clock.Real{}, presenceTick, func(context.Context) { s.presence.tick(s.now()) })
	s.unsubscribe()
	s.presence.farewell()
}

// StopMotion ends every connection's motion: it marks the connection
// closed, closes its WebRTC peer connection and lets go of its stream, so
// that no frame reaches a stream after the realm's stores are gone, and
// an enrollment in progress is set aside while the store still takes it,
// for the headset to go on with through another node. The realm then
// closes the XR edge.
func (s *Service) StopMotion() {
	s.sockets.mu.Lock()
	var conns []*socket
	for _, list := range s.sockets.conns {
		conns = append(conns, list...)
	}
	s.sockets.mu.Unlock()
	for _, c := range conns {
		s.endMotion(c)
	}
}

// CloseSession closes the session's WebSockets and their WebRTC peer
// connections on this node with code and reason, and reports how many.
func (s *Service) CloseSession(sessionID string, code int, reason string) int {
	return s.sockets.closeSession(sessionID, code, reason)
}

// FollowRevocations closes the live connections of every session revoked
// anywhere in the cluster, with their WebRTC peer connections, and what
// else the node holds open for it (closeOthers: its twin consoles), then
// forgets its trust. Every node runs it, so a sign-out through one node
// ends the session's WebSocket and data channel on another.
func (s *Service) FollowRevocations(revocations <-chan session.Revocation, closeOthers func(sessionID, reason string) int, forget func(sessionID string)) {
	for rev := range revocations {
		n := s.CloseSession(rev.SessionID, edge.CloseSessionEnded, "session revoked: "+rev.Reason)
		n += closeOthers(rev.SessionID, "session revoked: "+rev.Reason)
		if n > 0 {
			s.log.Info("closed revoked session's connections", "session", rev.SessionID, "connections", n, "reason", rev.Reason)
		}
		forget(rev.SessionID)
	}
}

// PushSession sends msgs to the session's connections on this node,
// queued together so that each connection's writer sends them in one
// write.
func (s *Service) PushSession(sessionID string, msgs ...[]byte) {
	s.sockets.pushSession(sessionID, msgs...)
}

// PushTrust sends a session's trust change to its live connections.
func (s *Service) PushTrust(sessionID string, a trust.Assessment) {
	s.sockets.pushSession(sessionID, encodeLive(liveMessage{Type: "trust", Trust: s.deps.Views.Trust(a)}))
}

// WhereIs is where the realm has admitted the avatar in the scene (see
// presenceHub.whereIs).
func (s *Service) WhereIs(sceneID, avatarID, sessionID string) Standing {
	if s == nil {
		return Standing{Scene: sceneID}
	}
	return s.presence.whereIs(sceneID, avatarID, sessionID)
}

// MembersByScene counts the avatars connected to this node in each scene
// of the catalog, 0 where none is; the other nodes count theirs.
func (s *Service) MembersByScene() map[string]int {
	out := map[string]int{}
	for _, sc := range s.deps.Scenes.Scenes() {
		out[sc.ID] = 0
	}
	h := s.presence
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, room := range h.rooms {
		out[id] = len(room.local)
	}
	return out
}

// Peers names the other nodes whose presence heartbeats arrived lately
// (core NATS, so heard while JetStream elects leaders).
func (s *Service) Peers() []string {
	if s == nil {
		return nil
	}
	return s.presence.livePeers(s.now())
}

// PeersHeard is when, on the realm's clock, this node last heard each
// other node it has not yet taken for dead.
func (s *Service) PeersHeard() map[string]time.Time {
	if s == nil {
		return nil
	}
	h := s.presence
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]time.Time, len(h.peers))
	for node, p := range h.peers {
		out[node] = p.lastSeen
	}
	return out
}

// API is the realm WebSocket's route. It is registered before the node
// has started; it answers through the edge, which keeps it at 503 until
// the realm is ready, and by then the service exists.
type API struct {
	edge *edge.Edge
	svc  func() *Service
}

// NewAPI serves the realm WebSocket of the service svc returns once the
// realm is ready.
func NewAPI(e *edge.Edge, svc func() *Service) *API { return &API{edge: e, svc: svc} }

// Routes registers the realm WebSocket.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/realm", a.edge.AuthedOrAgent(a.handleLive))
}

func (a *API) handleLive(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	a.svc().handleLive(a.edge, w, req, p)
}

// MembersJSON lists who is in the scene as this node knows them (its own
// members and those the other nodes told it of), in the wire form of a
// joined snapshot's members (clients/PROTOCOL.md): each person and agent
// marked as what it is; [] when nobody is there. The wire form is the
// contract, so the parts that show members need no type of this one.
func (s *Service) MembersJSON(sceneID string) json.RawMessage {
	h := s.presence
	h.mu.Lock()
	defer h.mu.Unlock()
	members := []Member{}
	if room := h.rooms[sceneID]; room != nil {
		members = room.views()
	}
	return encodeJSON(members)
}

// BindAgents gives the live edge what tells whether an agent's delegation
// still stands (agents.Revocations). Like the edge's, the composition root
// calls it once during start-up, before the realm reports ready; until
// then agents are refused the realm WebSocket.
func (s *Service) BindAgents(standing AgentStanding) { s.deps.Agents = standing }
