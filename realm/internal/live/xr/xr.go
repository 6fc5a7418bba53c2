package xr

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/biometrics"
)

// The transports XR frames arrive on, as metrics and status messages name
// them.
const (
	TransportWebSocket = "websocket"
	transportWebRTC    = "webrtc"
)

// xrMaxFrameRate is the most frames a second one session may have scored
// on a node. Headsets sample at 72 to 144 Hz; beyond this a client is
// flooding, and the excess is dropped before it costs any decoding.
const xrMaxFrameRate = 500

// xrStatusEvery is how often a streaming session is sent its frame
// counts. While its windows are scored the status goes with a score
// instead (statusDue), at most xrStatusLongest apart.
const (
	xrStatusEvery   = time.Second
	xrStatusLongest = 3 * time.Second
)

// statusDue reports whether the stream's xr.status goes with the message
// being read: since is the time since the last one, scored whether the
// message's frames completed a scored window, and scoring whether the
// stream scores against a template. A stream being scored gets its status
// with a window's score, so that the two leave in one write (the
// connection's writer sends what is queued together, and a write(2) per
// message was a twentieth of a busy node's CPU): from three quarters of
// a second on, since windows complete a hop apart give or take a
// message; alone only when no score came for xrStatusLongest (a thinned
// stream is scored every other hop). Other streams get it every second.
func statusDue(since time.Duration, scored, scoring bool) bool {
	switch {
	case scored:
		return since >= xrStatusEvery*3/4
	case scoring:
		return since >= xrStatusLongest
	default:
		return since >= xrStatusEvery
	}
}

// Service is one node's XR edge: the WebRTC API, the biometrics engine
// and its population, the template store, and the motion streams of the
// sessions connected here.
//
// Lock order: registry.mu, then sessionStream.mu. Link.peerMu is never held
// with either. sessionStream.mu is held for the session's own work only: a
// message's decoding and stream push, and the stream's set-up (its template
// read and a trust assessment); stream events are handled after it is
// released.
type Service struct {
	deps      Deps
	log       *slog.Logger
	api       *webrtcAPI
	m         *metrics
	engine    *biometrics.Engine
	templates *biometrics.TemplateStore
	// paths shares this node's replay path cells with the other nodes
	// and takes theirs in, so that motion replayed through another node
	// is caught (nil when the node runs alone, without a name).
	paths *biometrics.PathFeed
	// enroll and enrollWithin are Config.Enrollment and EnrollWithin.
	enroll, enrollWithin time.Duration

	peers atomic.Int64
	reg   registry
	// admit decides whether a session may open a new stream here.
	admit admission
	// thin decides when the engine thins (thinning.go); only the CPU
	// measurement touches it.
	thin thinner
	// paused are the enrollments whose streams closed before they
	// finished (enrollpause.go); aside keeps them in the store for the
	// other nodes (enrollshare.go; nil in tests of this node alone).
	paused pausedEnrollments
	aside  *biometrics.AsideStore
	// sharing are aside's writes in flight (enrollshare.go).
	sharing tasks
	// exchangeSeed is ExchangeSeed's, retiredExchangeSeeds
	// RetiredExchangeSeeds'.
	exchangeSeed         []byte
	retiredExchangeSeeds [][]byte
	// retiredKeys counts the template keys the key file holds below the
	// sealing one.
	retiredKeys int
	// resealed is what the start-up pass of Reseal found (a
	// biometrics.ResealStats), for the metrics.
	resealed atomic.Value
	// changes is the template feed Start opened and Run follows.
	changes <-chan biometrics.TemplateChange
	// unstored are the templates enrolled or adapted here that the store
	// has not taken yet (unstored.go).
	unstored unstoredTemplates
	// settling are the store reads again of unsettled streams
	// (settle.go); stop ends them when the node closes.
	settling tasks
	stop     context.Context
	stopAll  context.CancelFunc
}

// tasks are goroutines the node waits for when it closes: none starts
// after the wait began, so that the wait is not raced by a stream closing,
// or a frame arriving, on the way out.
type tasks struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// start runs task on a goroutine of its own unless the node is closing,
// and says whether it did.
func (ts *tasks) start(task func()) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return false
	}
	ts.wg.Go(task)
	return true
}

// closeAndWait refuses new tasks and waits for those running.
func (ts *tasks) closeAndWait() {
	ts.mu.Lock()
	ts.closed = true
	ts.mu.Unlock()
	ts.wg.Wait()
}

// registry is the sessions streaming to this node and the avatars whose
// templates the engine has.
type registry struct {
	mu       sync.Mutex
	sessions map[string]*sessionStream
	// known are the avatars whose templates the engine has: each one it is
	// given refits its background model, so a reconnecting avatar's is not
	// given again.
	known map[string]bool
}

// learn reports whether the engine must be given avatarID's template, and
// notes that it has it.
func (h *registry) learn(avatarID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.known[avatarID] {
		return false
	}
	h.known[avatarID] = true
	return true
}

// knows tells whether the avatar's template is in the population.
func (h *registry) knows(avatarID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.known[avatarID]
}

// knownAvatars lists the avatars whose templates are in the population.
func (h *registry) knownAvatars() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.known))
	for id := range h.known {
		out = append(out, id)
	}
	return out
}

func (h *registry) unlearn(avatarID string) {
	h.mu.Lock()
	delete(h.known, avatarID)
	h.mu.Unlock()
}

// sessionStream is the motion stream of one session on this node, shared by
// the session's connections (a headset may stream over its data channel
// and fall back to the WebSocket without losing its place).
type sessionStream struct {
	id   string
	sess session.Session
	refs int // connections holding it; guarded by registry.mu

	mu sync.Mutex
	// stream is the biometrics engine's view of the session's motion.
	stream      *biometrics.Stream
	hasTemplate bool
	// unsettled is what the stream could not read from the store when it
	// opened, until a read again tells (settle.go); nil once known.
	unsettled *unsettled
	// released: the last connection let go, and the stream is closed.
	released bool
	// consentAt is when the user-verified passkey assertion that started
	// the stream's enrollment was made; whether it is still enrolling is
	// the stream's to say (biometrics.Stream.Enrolling).
	consentAt time.Time
	// frames is the decode buffer, reused for every message.
	frames []biometrics.Frame
	// rateStart and rateCount meter frames per second for xrMaxFrameRate.
	rateStart time.Time
	rateCount int
	// decodeRejected counts frames refused before they reached the stream.
	decodeRejected map[string]uint64
	// synced is the part of the stream's counters already added to the
	// node's metrics.
	synced     biometrics.StreamStats
	lastStatus time.Time
	transport  string
}

// acquire returns the session's stream on this node, creating it for the
// first connection that streams if the node admits one more (a session
// already streaming here is always let in). A created session is returned
// locked, so that the caller sets it up before any other connection uses
// it.
func (h *registry) acquire(sess session.Session, adm *admission, now time.Time) (x *sessionStream, created bool, busy *BusyError) {
	h.mu.Lock()
	defer h.mu.Unlock()
	x, ok := h.sessions[sess.ID]
	if !ok {
		if busy := adm.check(now); busy != nil {
			return nil, false, busy
		}
		adm.opened()
		x = &sessionStream{id: sess.ID, sess: sess, decodeRejected: map[string]uint64{},
			synced: biometrics.StreamStats{FramesRejected: map[string]uint64{}}}
		x.mu.Lock()
		h.sessions[sess.ID] = x
		created = true
	}
	x.refs++
	return x, created, nil
}

// release drops a connection's hold; the last one frees the stream, and
// its place in the admission count.
func (h *registry) release(x *sessionStream, adm *admission) (freed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	x.refs--
	if x.refs > 0 {
		return false
	}
	delete(h.sessions, x.id)
	adm.open.Add(-1)
	return true
}

// streaming tells whether the session has a stream on this node.
func (h *registry) streaming(sessionID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.sessions[sessionID]
	return ok
}

func (h *registry) session(sessionID string) *sessionStream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[sessionID]
}

// ofAvatar lists the avatar's sessions streaming to this node.
func (h *registry) ofAvatar(avatarID string) []*sessionStream {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*sessionStream
	for _, x := range h.sessions {
		if x.sess.Avatar == avatarID {
			out = append(out, x)
		}
	}
	return out
}

// all lists the sessions streaming to this node.
func (h *registry) all() []*sessionStream {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*sessionStream, 0, len(h.sessions))
	for _, x := range h.sessions {
		out = append(out, x)
	}
	return out
}

func (h *registry) streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

func (s *Service) peerOpened() { s.peers.Add(1); s.m.peersOpened.Inc() }
func (s *Service) peerClosed() { s.peers.Add(-1) }

// allow meters the session's frame rate; the caller holds x.mu.
func (x *sessionStream) allow(now time.Time, n int) bool {
	if now.Sub(x.rateStart) >= time.Second {
		x.rateStart, x.rateCount = now, 0
	}
	if x.rateCount+n > xrMaxFrameRate {
		return false
	}
	x.rateCount += n
	return true
}

// metrics are the node's XR counters. Children of the vectors are kept
// for the hot paths, which then do no label lookups.
type metrics struct {
	frames      *prometheus.CounterVec // transport, outcome
	messages    *prometheus.CounterVec // transport, outcome
	windows     prometheus.Counter
	thinned     prometheus.Counter
	scoring     prometheus.Histogram
	socketQueue prometheus.Histogram
	events      *prometheus.CounterVec // kind
	peersOpened prometheus.Counter
	stateBytes  prometheus.Gauge
	refused     *prometheus.CounterVec // reason
	shed        prometheus.Counter
	enrollments *prometheus.CounterVec // what happened
	// templateUnknown counts streams that opened without knowing whether
	// their avatar has a template, and how they settled (settle.go).
	templateUnknown *prometheus.CounterVec // what happened

	accepted map[string]prometheus.Counter // by transport
	okMsgs   map[string]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Service) *metrics {
	m := &metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_xr_frames_total",
			Help: "XR frames received, by transport and outcome (accepted, or the reason they were rejected).",
		}, []string{"transport", "outcome"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_xr_messages_total",
			Help: "XR frame messages received, by transport and outcome (ok, malformed, rate-limited, node-busy, session-closed, not-binary).",
		}, []string{"transport", "outcome"}),
		windows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zerorealm_xr_windows_scored_total",
			Help: "Windows of motion scored against an enrolled template.",
		}),
		thinned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zerorealm_xr_windows_thinned_total",
			Help: "Windows of motion left unjudged while this node thinned (zerorealm_xr_thinning): every other window of a stream it trusts and is sure of. The windows judged are back to back, so every sample is still judged.",
		}),
		scoring: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "zerorealm_xr_window_score_duration_seconds",
			Help:    "Time to take in the frames that complete a window of motion and score it: features, embedding and the match against the wearer's template.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
		}),
		socketQueue: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "zerorealm_xr_socket_queue_seconds",
			Help:    "How long XR frame messages waited between reaching this machine and this node's read, from the kernel's receive stamp: over WebSocket, the stamp of the message's newest bytes; over a data channel, that of its peer connection's newest datagram, so at most the message's own wait. The node's own read delay, per message.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_xr_events_total",
			Help: "Biometric events, by kind (score, liveness, enrolled).",
		}, []string{"kind"}),
		peersOpened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zerorealm_xr_peer_connections_opened_total",
			Help: "WebRTC peer connections answered.",
		}),
		stateBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zerorealm_xr_stream_state_bytes",
			Help: "Memory held by this node's biometric streams (buffers, features, templates), as the streams count it.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_xr_streams_refused_total",
			Help: "New XR streams (a session's first frames, or its WebRTC offer) this node refused, by reason: behind (its read lag reached a second), capacity (it held --max-xr-streams) or cpu (its spare CPU was under --xr-cpu-reserve).",
		}, []string{"reason"}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zerorealm_xr_streams_shed_total",
			Help: "Open XR streams this node closed while behind, because they ran 2 s late or more (a message that waited that long between reaching this machine and the node's read, as zerorealm_xr_socket_queue_seconds measures it, or data channel frames arriving that much later than at best); each client was told node-busy, as a refused new stream is.",
		}),
		enrollments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_xr_enrollments_total",
			Help: "Biometric enrollments on this node, by what happened: started (after a user-verified passkey assertion), set-aside (its stream closed before it finished; it is kept here and, sealed, in the store for the other nodes), not-shared (set aside here only: the store did not take it), claimed (one set aside on another node, taken from the store by the session's stream here), resumed (the session's next stream here took it up, set aside here or claimed), not-resumed (the session's next stream here came too late, suspended, after a template deletion, or another node took it up first, and starts over if a passkey assertion consents), abandoned (its motion failed a liveness check). Finished ones are zerorealm_xr_events_total{kind=\"enrolled\"}.",
		}, []string{"what"}),
		templateUnknown: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_xr_template_unknown_total",
			Help: "XR streams that could not tell whether their avatar has a biometric template (a store read failed) and only counted and checked their motion until a read again told, by what happened: at-open (a stream opened so), read-again (a read again failed too), found (the template was read, or reached the node through its template feed, and the stream scores its wearer from then on), none (the avatar has none: the stream enrolls if a passkey assertion consents).",
		}, []string{"what"}),
		accepted: map[string]prometheus.Counter{},
		okMsgs:   map[string]prometheus.Counter{},
	}
	for _, t := range []string{TransportWebSocket, transportWebRTC} {
		m.accepted[t] = m.frames.WithLabelValues(t, "accepted")
		m.okMsgs[t] = m.messages.WithLabelValues(t, "ok")
	}
	for _, reason := range []string{BusyBehind, BusyCapacity, BusyCPU} {
		m.refused.WithLabelValues(reason) // every series exists from the start
	}
	for _, what := range []string{"started", "set-aside", "not-shared", "claimed", "resumed", "not-resumed", "abandoned"} {
		m.enrollments.WithLabelValues(what)
	}
	for _, what := range []string{"at-open", "read-again", "found", "none"} {
		m.templateUnknown.WithLabelValues(what)
	}
	reg.MustRegister(m.frames, m.messages, m.windows, m.thinned, m.scoring, m.socketQueue, m.events, m.peersOpened, m.stateBytes, m.refused, m.shed, m.enrollments, m.templateUnknown,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerorealm_xr_streams", Help: "Sessions streaming XR motion to this node."},
			func() float64 { return float64(s.reg.streams()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerorealm_xr_peer_connections", Help: "Open WebRTC peer connections."},
			func() float64 { return float64(s.peers.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zerorealm_xr_templates_unstored",
			Help: "Biometric templates enrolled or adapted on this node that the store did not take in time, held in memory and stored again every 2 s to 30 s until it does (or until the avatar deletes its template).",
		}, func() float64 { return float64(s.unstored.count()) }),
		// A node behind its sockets reads every stream late; the streams'
		// clock checks discount this instead of suspending them all.
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zerorealm_xr_node_read_lag_seconds",
			Help: "How far behind its XR streams this node reads their frames, estimated from the climb of the least delayed quarter of them (0 when it keeps up, or with fewer than 32 streams).",
		}, func() float64 { return s.engine.ReadLag().Seconds() }),
		// The same lag measured on the sockets themselves: it sees the
		// slowest readers, which the estimate above leaves out.
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zerorealm_xr_node_socket_queue_seconds",
			Help: "How long XR frames waited between reaching this machine and this node's read, as zerorealm_xr_socket_queue_seconds measures it: the wait a tenth of the streams with receive stamps reached at their last read (0 with fewer than 32 of them). From a second up the node opens no new stream.",
		}, func() float64 { return s.engine.SocketQueue().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zerorealm_xr_thinning",
			Help: "1 while this node, short of CPU (its spare cores under --xr-thin-below) or behind its streams, judges each XR stream it trusts and is sure of every other window; 0 otherwise.",
		}, func() float64 {
			if s.engine.Thinning() {
				return 1
			}
			return 0
		}),
		// What admission by CPU sees, so that an operator can tell a node
		// short of CPU from one whose streams cost more than they should.
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zerorealm_xr_cpu_spare_cores",
			Help: "Cores this node could still use: the machine's idle cores, at most those GOMAXPROCS leaves it, averaged over 5 s, the least such average of the last 10 s (NaN until measured).",
		}, func() float64 { return s.admit.cpu.seen(func(v *cpuView) float64 { return v.spare }) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zerorealm_xr_stream_cpu_cores",
			Help: "Cores one XR stream costs this node, over the last 5 s: the process's CPU over its streams, so an upper bound (NaN until measured or without streams).",
		}, func() float64 {
			return s.admit.cpu.seen(func(v *cpuView) float64 {
				if v.streams == 0 {
					return math.NaN()
				}
				return v.perStream
			})
		}),
	)
	// The replay path feed: a node that sends cells its peers never take
	// in, or drops them, catches no replay of what it saw through them.
	pathCells := func(outcome string, count func(biometrics.PathFeedStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "zerorealm_xr_path_cells_total",
			Help:        "Hashed replay path cells this node shared with the cluster's other nodes (sent), took in from them (received), or lost to a full queue or a failed append (dropped).",
			ConstLabels: prometheus.Labels{"outcome": outcome},
		}, func() float64 { return float64(count(s.paths.Stats())) })
	}
	// A rotation of the template key: the operator drops the retired key
	// once every node's start-up pass left nothing under it.
	resealed := func(outcome string, count func(biometrics.ResealStats) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "zerorealm_xr_templates_resealed",
			Help:        "Biometric templates this node's start-up pass found under a retired template key and sealed again under the key its key file names first (resealed), found under that key already (current), could not open (do-not-open), or found written under a retired key again each time it read them (rewritten, a node still sealing under it). 0 with a key file of one key.",
			ConstLabels: prometheus.Labels{"outcome": outcome},
		}, func() float64 {
			st, _ := s.resealed.Load().(biometrics.ResealStats)
			return float64(count(st))
		})
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zerorealm_xr_template_retired_keys",
			Help: "Retired template keys this node's key file holds below the one it seals with: they open what they sealed before a rotation.",
		}, func() float64 { return float64(s.retiredKeys) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zerorealm_xr_templates_under_retired_keys",
			Help: "Stored biometric templates this node last read sealed under a retired template key (one its key file holds below the first), and has not seen written or deleted since. Once every node's key file puts the new key first, 0 on every node means the rotation sealed every template again and the retired key may leave the files.",
		}, func() float64 { return float64(s.templates.UnderRetiredKeys()) }),
		resealed("resealed", func(st biometrics.ResealStats) int { return st.Resealed }),
		resealed("current", func(st biometrics.ResealStats) int { return st.Current }),
		resealed("do-not-open", func(st biometrics.ResealStats) int { return st.Unopened }),
		resealed("rewritten", func(st biometrics.ResealStats) int { return st.Rewritten }),
	)
	reg.MustRegister(
		pathCells("sent", func(st biometrics.PathFeedStats) uint64 { return st.SentCells }),
		pathCells("received", func(st biometrics.PathFeedStats) uint64 { return st.ReceivedCells }),
		pathCells("dropped", func(st biometrics.PathFeedStats) uint64 { return st.Dropped }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "zerorealm_xr_path_batches_refused_total",
			Help: "Peers' batches of replay path cells refused because they did not open under the cluster's template key or did not decode.",
		}, func() float64 { return float64(s.paths.Stats().Rejected) }),
	)
	return m
}

func (m *metrics) message(transport, outcome string) {
	if outcome == "ok" {
		m.okMsgs[transport].Inc()
		return
	}
	m.messages.WithLabelValues(transport, outcome).Inc()
}
