package xr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/keyfile"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/trust"
)

// Config is what the XR edge reads of the realm's configuration.
type Config struct {
	// Biometrics configures the engine; its Logger defaults to the
	// service's.
	Biometrics biometrics.Config
	// TemplateKeyFile holds the key that seals templates at rest; ""
	// means template.key in DataDir.
	TemplateKeyFile string
	DataDir         string
	// UDPPort, when set, is the one UDP port every peer connection shares.
	UDPPort int
	// PublicIPs are the node's addresses as its clients reach them when
	// it sits behind a 1:1 NAT (a cloud machine whose interfaces hold
	// private addresses): each peer connection offers them beside its
	// own, each on a socket at a private address and the port the NAT
	// forwards to it unchanged. At most one IPv4 and one IPv6 address
	// (PublicIPProblems).
	PublicIPs []netip.Addr
	// Node names this node in the replay path feed the nodes share.
	Node string
	// Enrollment is how much motion an enrollment collects (default
	// 60s); EnrollWithin is how recent the user-verified passkey
	// assertion that consents to it must be (default 2m).
	Enrollment, EnrollWithin time.Duration
	// MaxStreams caps the sessions streaming XR motion to this node: a
	// session's new stream beyond it (its first frames or its WebRTC
	// offer) is refused with node-busy, as one is while the node is
	// behind its streams; streams already open keep their quality. 0 is
	// no cap; negative is invalid (MaxStreamsProblems).
	MaxStreams int
	// CPUReserve is the share of the node's cores (GOMAXPROCS) it keeps
	// free: from 64 streams on, a new stream is refused with node-busy
	// while the cores the node could still use (the machine's idle ones,
	// at most those GOMAXPROCS leaves it), less what the streams opened
	// since they were measured will take, are under it. 0 is off; it
	// must be under 1 (CPUReserveProblems).
	CPUReserve float64
	// ThinBelow is the share of the node's cores under which its spare
	// CPU makes it thin (biometrics.Engine.SetThinning): each stream it
	// trusts and is sure of is judged every other window, until the node
	// has that much to spare and the CPU thinning saves. A node behind
	// its streams thins whatever its CPU. It is set above CPUReserve, so
	// that a node thins before it turns headsets away. 0 is never; it
	// must be under 1 (ThinBelowProblems).
	ThinBelow float64
}

// Defaults of Config.Enrollment and EnrollWithin.
const (
	defaultEnrollment   = 60 * time.Second
	defaultEnrollWithin = 2 * time.Minute
)

// MaxStreamsProblems says what is wrong with a Config.MaxStreams, for the
// realm's configuration check.
func MaxStreamsProblems(maxStreams int) []string {
	if maxStreams < 0 {
		return []string{fmt.Sprintf("max XR streams %d: want 0 (no cap) or more", maxStreams)}
	}
	return nil
}

// PublicIPProblems says what is wrong with a Config.PublicIPs, for the
// realm's configuration check: an address a client could send datagrams
// to, and one of each family at most, since each stands for all of the
// node's own addresses of its family.
func PublicIPProblems(ips []netip.Addr) []string {
	var problems []string
	var v4, v6 int
	for _, ip := range ips {
		ip = ip.Unmap()
		switch {
		case !ip.IsValid():
			problems = append(problems, "WebRTC public IP: an invalid address")
			continue
		case ip.IsUnspecified() || ip.IsMulticast() || ip.IsLinkLocalUnicast():
			problems = append(problems, fmt.Sprintf("WebRTC public IP %s: want an address clients send datagrams to (not unspecified, multicast or link-local)", ip))
			continue
		case ip.Is4():
			v4++
		default:
			v6++
		}
	}
	if v4 > 1 || v6 > 1 {
		problems = append(problems, fmt.Sprintf("WebRTC public IPs: %d IPv4 and %d IPv6 addresses, want at most one of each (each stands for all of the node's own addresses of its family)", v4, v6))
	}
	return problems
}

// CPUReserveProblems says what is wrong with a Config.CPUReserve, for the
// realm's configuration check.
func CPUReserveProblems(reserve float64) []string {
	if !(reserve >= 0 && reserve < 1) {
		return []string{fmt.Sprintf("XR CPU reserve %v: want a share of the cores from 0 (off) to under 1", reserve)}
	}
	return nil
}

// Trust is the session trust the XR edge reads and feeds (the realm's
// trust hub): motion scores (trust.BiometricMatch) and failed liveness
// checks (trust.Liveness) are evidence.
type Trust interface {
	Assess(ctx context.Context, sess session.Session) trust.Assessment
	Observe(ctx context.Context, sess session.Session, s trust.Signal) (trust.Assessment, error)
}

// Sessions reaches every live connection of a session on this node: a
// stream's status and scores go to all of them, and a panic on its frame
// path closes them.
type Sessions interface {
	// PushSession queues msgs, in order and together, so that the
	// connection's writer sends them in one write.
	PushSession(sessionID string, msgs ...[]byte)
	CloseSession(sessionID string, code int, reason string) int
}

// StepUps consumes the step-up proof bound to an action's digest.
type StepUps interface {
	Consume(ctx context.Context, sessionID string, digest []byte) error
}

// Auditor records the XR edge's decisions in the audit log.
type Auditor interface {
	AllowQueued(req *http.Request, actor, action, resource, reason string, signals map[string]any)
	DenyQueued(req *http.Request, actor, action, resource string, cause error)
	// RecordQueued records ev without making the caller wait for it.
	RecordQueued(ctx context.Context, ev audit.Event)
}

// Deps is what the XR edge needs from the rest of the realm.
type Deps struct {
	Log      *slog.Logger
	Store    *store.Store
	Registry prometheus.Registerer
	Config   Config
	Trust    Trust
	Sessions Sessions
	StepUps  StepUps
	Audit    Auditor
	// Clock dates frames' arrival and paces streams, and ages passkey
	// assertions for enrollment; nil is the system's.
	Clock clock.Clock
}

// Conn is the live connection a Link carries motion for: the realm
// WebSocket of one session, which also carries the WebRTC signalling.
type Conn interface {
	// Context ends with the connection or the realm.
	Context() context.Context
	// Session is the session as authenticated when the client connected.
	Session() session.Session
	// Closed reports whether the connection was told to close: frames
	// that arrive afterwards are dropped unread.
	Closed() bool
	// Used notes a message from the client, which keeps its session from
	// idling out.
	Used()
	// Push queues a message for the client.
	Push(msg []byte)
	// PushError tells the client a message was refused, rate-limited
	// unless always.
	PushError(text string, always bool)
	// PushBusy tells the client its new stream was refused, rate-limited
	// as PushError is.
	PushBusy(b *BusyError)
	// Moved reports the newest frame of a message: where the avatar
	// stands for the others in its scene.
	Moved(f biometrics.Frame)
}

// New prepares the node's XR edge: the biometrics engine with its prior,
// the template store, the WebRTC API and the metrics.
func New(ctx context.Context, deps Deps) (*Service, error) {
	cfg := deps.Config
	bcfg := cfg.Biometrics
	if bcfg.Logger == nil {
		bcfg.Logger = deps.Log.With("component", "biometrics")
	}
	prior, err := xrPrior(bcfg)
	if err != nil {
		return nil, fmt.Errorf("realm: biometric prior: %w", err)
	}
	engine, err := biometrics.NewEngine(bcfg, prior...)
	if err != nil {
		return nil, fmt.Errorf("realm: biometrics: %w", err)
	}
	keyFile := cfg.TemplateKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, TemplateKeyFile)
	}
	ring, err := keyfile.LoadRingOrCreate(keyFile, "template key")
	switch {
	case errors.Is(err, keyfile.ErrNotPrivate):
		return nil, fmt.Errorf("realm: %w", err)
	case err != nil:
		return nil, fmt.Errorf("realm: %w (deleting the file orphans every template)", err)
	}
	// The file's first key seals; the others are keys a rotation retired,
	// kept until every template they sealed was sealed again (Reseal).
	key, retired := ring[0], ring[1:]
	templates, err := biometrics.NewTemplateStore(ctx, deps.Store, key, retired...)
	switch {
	case errors.Is(err, biometrics.ErrKeyMismatch):
		return nil, fmt.Errorf("realm: %s: %w; every node of a cluster seals templates under one key: copy the key file of a node that already serves this cluster here (or point --template-key at it)", keyFile, err)
	case errors.Is(err, biometrics.ErrKeyRetired):
		return nil, fmt.Errorf("realm: %s: %w (another node rotated the cluster to a key this file holds below its first line, or does not hold: copy that node's key file here)", keyFile, err)
	case err != nil:
		return nil, fmt.Errorf("realm: template store: %w", err)
	}
	if templates.Rotated() {
		deps.Log.Warn("template key rotated: this node is the first to seal templates under the key its key file now names first; every node must now hold it first, and keep the retired keys until each has started once with it", "retired_keys", len(retired))
	}
	if cfg.EnrollWithin <= 0 {
		cfg.EnrollWithin = defaultEnrollWithin
	}
	aside, err := biometrics.NewAsideStore(ctx, deps.Store, key, cfg.EnrollWithin, retired...)
	if err != nil {
		return nil, fmt.Errorf("realm: %w", err)
	}
	exchangeSeed, err := biometrics.ExchangeSeed(key)
	if err != nil {
		return nil, fmt.Errorf("realm: %w", err)
	}
	var retiredSeeds [][]byte
	for _, k := range retired {
		seed, err := biometrics.ExchangeSeed(k)
		if err != nil {
			return nil, fmt.Errorf("realm: %w", err)
		}
		retiredSeeds = append(retiredSeeds, seed)
	}
	// Replays are caught across nodes and across a node's restarts: each
	// node stores the hashed path cells of what it saw (never motion),
	// sealed under the cluster's template key, for its peers and for
	// itself once it has restarted with an empty registry. A node alone on
	// its embedded NATS server keeps them too, for the second reason.
	paths, err := biometrics.StartPathFeed(ctx, biometrics.PathFeedConfig{
		Store: deps.Store, Engine: engine, Node: cfg.Node, Key: key, RetiredKeys: retired, Logger: bcfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("realm: biometric path feed: %w", err)
	}
	api, err := newWebRTCAPI(webrtcNet{udpPort: cfg.UDPPort, publicIPs: cfg.PublicIPs}, true, deps.Log)
	if err != nil {
		paths.Close()
		return nil, err
	}
	if cfg.Enrollment <= 0 {
		cfg.Enrollment = defaultEnrollment
	}
	deps.Clock = clock.Or(deps.Clock)
	s := &Service{
		deps: deps, log: deps.Log,
		api: api, engine: engine, templates: templates, aside: aside, exchangeSeed: exchangeSeed, retiredExchangeSeeds: retiredSeeds, retiredKeys: len(retired), paths: paths,
		enroll: cfg.Enrollment, enrollWithin: cfg.EnrollWithin,
		reg: registry{sessions: map[string]*sessionStream{}, known: map[string]bool{}},
	}
	s.stop, s.stopAll = context.WithCancel(context.WithoutCancel(ctx))
	s.admit.max = cfg.MaxStreams
	s.admit.cpu.cores = float64(runtime.GOMAXPROCS(0))
	s.admit.cpu.reserve = cfg.CPUReserve * s.admit.cpu.cores
	s.thin.below = cfg.ThinBelow * s.admit.cpu.cores
	s.admit.behind = func(now time.Time) (bool, time.Duration) {
		return engine.Behind(now), max(engine.ReadLag(), engine.SocketQueue())
	}
	s.m = newMetrics(deps.Registry, s)
	return s, nil
}

// Close waits for the store reads again of unsettled streams (cut short)
// and the writes of enrollments set aside (let finish, so that what the
// node set aside on its way out reaches the store), stops the replay path feed
// and closes the shared UDP socket. The realm closes every peer
// connection first (Link.ClosePeer), so no frame reaches a stream after
// the stores behind it are gone.
func (s *Service) Close() {
	s.stopAll()
	s.settling.closeAndWait()
	s.sharing.closeAndWait()
	s.paths.Close()
	if err := s.api.closeMux(); err != nil {
		s.log.Warn("close WebRTC UDP port", "err", err)
	}
}

// PeerConnections is how many WebRTC peer connections are open.
func (s *Service) PeerConnections() int64 { return s.peers.Load() }

// StreamCounts is the frames the session's stream on this node accepted
// and rejected, as its xr.status messages tell them; ok is false while
// the session has no stream here.
func (s *Service) StreamCounts(sessionID string) (accepted uint64, rejected map[string]uint64, ok bool) {
	x := s.reg.session(sessionID)
	if x == nil {
		return 0, nil, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stream == nil {
		return 0, nil, true
	}
	v := x.statusView(s.deps.Clock.Now(), x.stream.Stats())
	return v.FramesAccepted, v.FramesRejected, true
}

// StreamingSessions lists the sessions streaming to this node.
func (s *Service) StreamingSessions() []string {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	out := make([]string, 0, len(s.reg.sessions))
	for id := range s.reg.sessions {
		out = append(out, id)
	}
	return out
}

// KnowsTemplate reports whether the avatar's template is in this node's
// population.
func (s *Service) KnowsTemplate(avatarID string) bool { return s.reg.knows(avatarID) }

// ExchangeSeed is the seed of the realm's key for exchanging background
// statistics with other realms (biometrics.ExchangeSeed of the template
// key), the same on every node.
func (s *Service) ExchangeSeed() []byte { return s.exchangeSeed }

// RetiredExchangeSeeds are ExchangeSeed of each template key a rotation
// retired that the node still holds: the realm signs its background notes
// with them too, so that a peer realm that pinned the realm's key before
// the rotation takes them until it pins the new one.
func (s *Service) RetiredExchangeSeeds() [][]byte { return s.retiredExchangeSeeds }

// Templates is the store of sealed biometric templates.
func (s *Service) Templates() *biometrics.TemplateStore { return s.templates }

// Engine is the node's biometrics engine: its streams, background model,
// replay registry, read lag and thinning.
func (s *Service) Engine() *biometrics.Engine { return s.engine }

// Link is one live connection's motion: the session's stream it takes at
// its first frame, and the WebRTC peer connection its client signals over
// it. It ends with the connection.
type Link struct {
	s *Service
	c Conn

	// x is the session's motion stream on this node, taken at the first
	// frame the node admits and released when the connection ends. openMu
	// serializes taking it (the socket's and the data channel's readers
	// may both try) and guards the rest.
	x      atomic.Pointer[sessionStream]
	openMu sync.Mutex
	ended  bool
	// refused is the link's last refusal: frames before its retryAt are
	// dropped without asking again, as the client was told.
	refused *BusyError
	retryAt time.Time

	peerMu sync.Mutex
	peer   *peerConn
}

// Attach gives the connection c its motion link.
func (s *Service) Attach(c Conn) *Link { return &Link{s: s, c: c} }

// Frames takes one binary frame message that arrived over transport
// (TransportWebSocket for the socket itself).
func (l *Link) Frames(transport string, msg []byte) { l.s.ingestFrames(l, transport, msg, 0, false) }

// FramesHeld is Frames for a message that waited held in the socket's
// receive queue before the node read it, as the kernel's receive stamp
// tells (internal/netstamp): the stream's clock checks date it that much
// earlier than the read, so a node that reads a socket late never makes
// its device look slow.
func (l *Link) FramesHeld(transport string, msg []byte, held time.Duration) {
	l.s.ingestFrames(l, transport, msg, held, true)
}

// End is the end of the connection, which has been marked closed: its
// peer connection closes and it lets go of the session's stream; the last
// connection closes it. Only the first call does: a stopping node ends
// every connection's motion before the connection itself ends.
func (l *Link) End() {
	l.ClosePeer()
	l.openMu.Lock()
	if l.ended {
		l.openMu.Unlock()
		return
	}
	l.ended = true // no stream is taken after this
	x := l.x.Load()
	l.openMu.Unlock()
	l.letGo(x)
}

// letGo releases the connection's hold on x, closing the stream when it
// was the last.
func (l *Link) letGo(x *sessionStream) {
	if x == nil || !l.s.reg.release(x, &l.s.admit) {
		return
	}
	x.mu.Lock()
	x.released = true
	if x.stream != nil {
		l.s.setAsideEnrollment(x, l.s.deps.Clock.Now())
		l.s.sync(x, x.stream.Stats())
		l.s.m.stateBytes.Sub(float64(x.synced.StateBytes))
		x.stream.Close()
	}
	x.mu.Unlock()
}

// shed closes the connection's stream on a node that is behind, as if it
// had been refused by busy at now: its frames are dropped unread, and it
// may open a stream again after busy's retry time, if the node has room
// by then. The connection and its data channel stay open, as for a
// refused new stream: the client pauses its frames and sends them again
// on the same channel, with no new offer to make. It reports whether
// there was a stream to shed.
func (l *Link) shed(busy *BusyError, now time.Time) bool {
	l.openMu.Lock()
	x := l.x.Load()
	if x == nil || l.ended {
		l.openMu.Unlock()
		return false
	}
	l.x.Store(nil)
	l.refused, l.retryAt = busy, now.Add(busy.RetryAfter)
	l.openMu.Unlock()
	l.letGo(x)
	return true
}

// ResetRate forgets the frames the session's stream was metered for in
// the current second: a benchmark is not a headset.
func (l *Link) ResetRate() {
	if x := l.x.Load(); x != nil {
		x.mu.Lock()
		x.rateCount = 0
		x.mu.Unlock()
	}
}
