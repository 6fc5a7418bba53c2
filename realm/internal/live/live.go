package live

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/cork"
	"github.com/zerorealm/zerorealm/internal/netstamp"
	"github.com/zerorealm/zerorealm/internal/strictjson"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
)

// Close codes of the realm WebSocket (4000-4999 are the application's).
const (
	closeSessionRevoked = edge.CloseSessionEnded // the session was revoked or expired: sign in again
	closeTooSlow        = edge.CloseTooSlow      // the client did not keep up with its messages
	// closeReplaced (4409, takeover.go): the session connected again.
	// closeTooManyMessages ends a client that kept sending control
	// messages far beyond the rate limit after being told.
	closeTooManyMessages = 4429
	// closeInvalidPayload ends a client that sent a text message with
	// invalid UTF-8 or a member named twice (RFC 6455 §7.4.1: data
	// inconsistent with the type of the message): it is broken or probing.
	closeInvalidPayload = websocket.CloseInvalidFramePayloadData
)

const (
	// liveSendQueue is how many messages may wait for one connection before
	// it is cut off as too slow. Presence is coalesced into one message a
	// tick, and poses are decimated long before it fills
	// (presence_fanout.go), so only a client that stops reading hits it.
	liveSendQueue = edge.SocketSendQueue
	// liveMaxQueuedBytes bounds the bytes waiting for one connection: a
	// crowded scene's poses messages are tens of KiB each, and a client
	// that stops reading must not hold the realm's memory.
	liveMaxQueuedBytes = 1 << 20
	// liveSocketSendBuffer is the kernel send buffer of a realm WebSocket
	// (Linux doubles it): about half a second of a crowded scene's poses,
	// well above what a client's round trip needs.
	liveSocketSendBuffer = 64 << 10
	liveWriteWait        = edge.SocketWriteWait
	livePingPeriod       = edge.SocketPingPeriod
	livePongWait         = edge.SocketPongWait
	// liveMaxMessage bounds what a client may send: control messages (an
	// SDP offer is the largest, a few KiB) and binary frame messages (at
	// most biometrics.MaxMessageSize, about 4 KiB).
	liveMaxMessage = 16 << 10
	// liveErrorEvery rate-limits the error messages a misbehaving frame
	// stream earns, so a broken client at 90 Hz does not get 90 a second.
	liveErrorEvery = time.Second
	// liveWriteBatch is the most messages the writer sends in one system
	// call: enough for a score, a status and a trust change, and few
	// enough that a close or a ping waits behind little.
	liveWriteBatch = 8
)

// socket is one WebSocket of a session. Writes go through send so that a
// slow client never blocks the realm: when its queue is full it is closed.
// The WebRTC peer connection the client signals over it belongs to it, and
// ends with it.
type socket struct {
	ws *websocket.Conn
	// stamp orders the connections of one session: the newest stays
	// (takeover.go).
	stamp   liveStamp
	ctx     context.Context // the upgrade request's values; ends with the connection or the realm
	session string
	sess    session.Session
	// send holds what waits for the writer, at most liveSendQueue messages.
	send sendQueue
	// queued is the bytes of the messages in send, which the fan-out reads
	// to decimate a slow client before it has to be closed.
	queued atomic.Int64
	// closing carries the close frame to send, once.
	closing   chan closeFrame
	closeOnce sync.Once
	// closed is set as soon as the connection is told to close: frames
	// that arrive afterwards, on the socket or the data channel, are
	// dropped unread.
	closed atomic.Bool

	// motion is the connection's XR frames and WebRTC peer connection.
	motion *xr.Link

	lastError atomic.Int64 // unix nanoseconds of the last rate-limited error message
	// lastUse is the unix nanoseconds of the client's last message, on the
	// socket or the data channel: what keeps its session from idling out
	// (edge.WatchSessionEnd).
	lastUse atomic.Int64

	// p is who the connection belonged to when it connected. Decisions
	// read the avatar again (livePrincipal): its roles may have changed.
	p edge.Principal
	// limit meters control messages; only the reader uses it.
	limit controlLimiter
	// member is the connection's place in a scene, nil when it has joined
	// none.
	member atomic.Pointer[presenceMember]
	// presence is where the newest pose of its frames goes.
	presence *presenceHub
	// now is the realm's clock (Deps.Clock), which dates uses and paces
	// refusals; deadlines on the WebSocket itself stay on real time.
	now func() time.Time
}

func (c *socket) markUsed() { c.lastUse.Store(c.now().UnixNano()) }

// closePeer closes the connection's WebRTC peer connection, if any.
func (c *socket) closePeer() {
	if c.motion != nil {
		c.motion.ClosePeer()
	}
}

// The connection as the XR edge sees it (xr.Conn).

func (c *socket) Context() context.Context           { return c.ctx }
func (c *socket) Session() session.Session           { return c.sess }
func (c *socket) Closed() bool                       { return c.closed.Load() }
func (c *socket) Used()                              { c.markUsed() }
func (c *socket) Push(msg []byte)                    { c.push(msg) }
func (c *socket) PushError(text string, always bool) { c.pushError(text, always) }

// PushBusy tells the client the node refused its new XR stream, at most
// once per liveErrorEvery.
func (c *socket) PushBusy(b *xr.BusyError) { c.refuseBusy(b, true) }

// Moved makes the newest frame where the avatar stands for the others in
// its scene: no separate pose message is needed while frames flow.
func (c *socket) Moved(f biometrics.Frame) {
	// An avatar in no scene is seen by no one (presenceHub.pose drops its
	// pose): most streaming avatars, whose poses are then not converted,
	// three allocations a message.
	if c.member.Load() == nil {
		return
	}
	if p, ok := framePose(f); ok {
		c.presence.pose(c, p)
	}
}

type closeFrame struct {
	code   int
	reason string
}

// close ends the connection with a close frame and, at once, its peer
// connection: a revoked session's data channel must stop before the close
// frame has even been written.
func (c *socket) close(code int, reason string) {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.closing <- closeFrame{code, reason}
		c.closePeer()
	})
}

func (c *socket) push(msg []byte) {
	one := [1][]byte{msg}
	c.pushAll(one[:])
}

// pushAll queues msgs together, so that the writer takes them at once,
// and closes the connection as too slow when they do not all fit.
func (c *socket) pushAll(msgs [][]byte) {
	if len(msgs) > 0 && !c.offerAll(msgs) {
		c.close(closeTooSlow, "too slow: messages were not read in time")
	}
}

// offer queues msg without blocking, and reports false when the queue is
// full, by count or bytes; the caller then closes the connection.
func (c *socket) offer(msg []byte) bool {
	one := [1][]byte{msg}
	return c.offerAll(one[:])
}

// offerAll is offer for msgs together: all of them, or none.
func (c *socket) offerAll(msgs [][]byte) bool {
	n := int64(0)
	for _, msg := range msgs {
		n += int64(len(msg))
	}
	if c.queued.Load()+n > liveMaxQueuedBytes {
		return false
	}
	c.queued.Add(n)
	if !c.send.offerAll(msgs, liveSendQueue) {
		c.queued.Add(-n)
		return false
	}
	return true
}

// pushError tells the client a message was refused, at most once per
// liveErrorEvery unless always is set.
func (c *socket) pushError(text string, always bool) {
	if !always && !c.errorDue() {
		return
	}
	c.push(encodeLive(liveMessage{Type: "error", Error: text}))
}

// errorDue takes the connection's turn for a rate-limited error message:
// at most one every liveErrorEvery, whatever it is about.
func (c *socket) errorDue() bool {
	now := c.now().UnixNano()
	last := c.lastError.Load()
	return now-last >= int64(liveErrorEvery) && c.lastError.CompareAndSwap(last, now)
}

// sockets indexes this node's live connections by session, so revocations
// and trust changes reach them, and by avatar, so notices to every session
// of an avatar reach them and the avatar's connections can be counted.
type sockets struct {
	mu       sync.Mutex
	conns    map[string][]*socket
	byAvatar map[string][]*socket
	seq      atomic.Uint64 // numbers this node's connections, for their stamps
}

func newSockets() *sockets {
	return &sockets{conns: map[string][]*socket{}, byAvatar: map[string][]*socket{}}
}

func (h *sockets) add(c *socket) {
	h.mu.Lock()
	h.conns[c.session] = append(h.conns[c.session], c)
	h.byAvatar[c.holder()] = append(h.byAvatar[c.holder()], c)
	h.mu.Unlock()
}

func (h *sockets) remove(c *socket) {
	h.mu.Lock()
	dropConn(h.conns, c.session, c)
	dropConn(h.byAvatar, c.holder(), c)
	h.mu.Unlock()
}

// dropConn removes c from index[key], and the key with its last connection.
func dropConn(index map[string][]*socket, key string, c *socket) {
	list := slices.DeleteFunc(index[key], func(x *socket) bool { return x == c })
	if len(list) == 0 {
		delete(index, key)
	} else {
		index[key] = list
	}
}

func (h *sockets) of(sessionID string) []*socket {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.conns[sessionID])
}

func (h *sockets) ofAvatar(avatarID string) []*socket {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.byAvatar[avatarID])
}

// othersOfAvatar counts the avatar's connections on this node that a new
// connection of sessionID would not replace.
func (h *sockets) othersOfAvatar(avatarID, sessionID string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.byAvatar[avatarID] {
		if c.session != sessionID && !c.closed.Load() {
			n++
		}
	}
	return n
}

// closeSession closes the session's WebSockets and their WebRTC peer
// connections on this node.
func (h *sockets) closeSession(sessionID string, code int, reason string) int {
	conns := h.of(sessionID)
	for _, c := range conns {
		c.close(code, reason)
	}
	return len(conns)
}

func (h *sockets) pushSession(sessionID string, msgs ...[]byte) {
	for _, c := range h.of(sessionID) {
		c.pushAll(msgs)
	}
}

// liveMessage is the envelope of every message on the realm WebSocket.
type liveMessage struct {
	Type string `json:"type"`
	V    int    `json:"v,omitempty"`
	// hello
	Session map[string]any `json:"session,omitempty"`
	Avatar  map[string]any `json:"avatar,omitempty"`
	// hello of an agent: the agent and whose it is, in place of a session
	Agent map[string]any `json:"agent,omitempty"`
	// hello and trust
	Trust map[string]any `json:"trust,omitempty"`
	// xr.score and xr.status
	XR any `json:"xr,omitempty"`
	// webrtc.offer and webrtc.answer
	SDP string `json:"sdp,omitempty"`
	// webrtc.candidate: RTCIceCandidateInit as browsers' toJSON() gives it;
	// null ends the client's candidates.
	Candidate *xr.ICECandidate `json:"candidate,omitempty"`
	// error
	Error string `json:"error,omitempty"`
	// join (from the client)
	Scene string `json:"scene,omitempty"`
	// join (from an agent): the name it is shown by
	Name string `json:"-"`
	// pose (from the client)
	Pose *avatarPose `json:"-"`
}

func encodeLive(m liveMessage) []byte {
	b, _ := json.Marshal(m)
	return b
}

// errLiveMessage is wrapped by every refusal of a client's control message;
// the text after it is what the client is told.
var errLiveMessage = errors.New("live message refused")

// messageError is a refused control message: detail is what the client
// is told (in the error message or the close frame); it wraps
// errLiveMessage and the cause.
type messageError struct {
	detail string
	cause  error
}

func (e *messageError) Error() string { return errLiveMessage.Error() + ": " + e.detail }

func (e *messageError) Unwrap() []error {
	if e.cause != nil {
		return []error{errLiveMessage, e.cause}
	}
	return []error{errLiveMessage}
}

// refusedMessage refuses a control message with a detail for the client.
func refusedMessage(format string, args ...any) error {
	return &messageError{detail: fmt.Sprintf(format, args...)}
}

// messageDetail is what the client is told of a refused message.
func messageDetail(err error) string {
	var me *messageError
	if errors.As(err, &me) {
		return me.detail
	}
	return "message refused"
}

// maxCloseReason is the longest reason a close frame carries: its payload
// is at most 125 bytes, two of them the code (RFC 6455 §5.5).
const maxCloseReason = 123

// closeReason cuts a reason to fit a close frame, at a character boundary;
// gorilla/websocket would refuse to send a longer one at all.
func closeReason(s string) string {
	if len(s) <= maxCloseReason {
		return s
	}
	cut := maxCloseReason - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// errLiveInvalidText marks a refusal that closes the connection with 1007:
// the message is not UTF-8 or names a member twice.
var errLiveInvalidText = errors.New("invalid text message")

// Limits of the signaling fields, well above what browsers produce.
const (
	maxSDPSize       = 12 << 10
	maxCandidateSize = 1 << 10
	maxMidSize       = 64
)

// parseLiveMessage reads one control message from a client and checks the
// fields its type needs. Unknown types are refused here, so the reader's
// switch only sees what it handles.
func parseLiveMessage(data []byte) (liveMessage, error) {
	var m liveMessage
	var raw struct {
		Type      string          `json:"type"`
		SDP       string          `json:"sdp"`
		Candidate json.RawMessage `json:"candidate"`
		Scene     string          `json:"scene"`
		Name      *string         `json:"name"`
		Head      json.RawMessage `json:"head"`
		Left      json.RawMessage `json:"left"`
		Right     json.RawMessage `json:"right"`
	}
	if err := strictjson.Check(data); err != nil && !errors.Is(err, strictjson.ErrSyntax) {
		return m, &messageError{detail: errLiveInvalidText.Error() + ": " + err.Error(), cause: errors.Join(errLiveInvalidText, err)}
	}
	if err := json.Unmarshal(data, &raw); err != nil || raw.Type == "" {
		return m, refusedMessage("messages are JSON objects with a type")
	}
	m.Type = raw.Type
	switch raw.Type {
	case "ping":
	case "webrtc.offer":
		if raw.SDP == "" || len(raw.SDP) > maxSDPSize || !strings.HasPrefix(raw.SDP, "v=0") {
			return m, refusedMessage("webrtc.offer needs sdp, a session description of at most %d bytes starting with v=0", maxSDPSize)
		}
		m.SDP = raw.SDP
	case "webrtc.candidate":
		if len(raw.Candidate) == 0 || string(raw.Candidate) == "null" {
			return m, nil // end of candidates
		}
		var c xr.ICECandidate
		if err := json.Unmarshal(raw.Candidate, &c); err != nil {
			return m, refusedMessage("webrtc.candidate needs candidate, an RTCIceCandidateInit object or null")
		}
		if len(c.Candidate) > maxCandidateSize || (c.SDPMid != nil && len(*c.SDPMid) > maxMidSize) || (c.UsernameFragment != nil && len(*c.UsernameFragment) > maxMidSize) {
			return m, refusedMessage("webrtc.candidate is larger than any ICE candidate")
		}
		m.Candidate = &c
	case "join":
		if raw.Scene == "" || len(raw.Scene) > maxMidSize {
			return m, refusedMessage("join needs scene, a scene id")
		}
		m.Scene = raw.Scene
		if raw.Name != nil {
			if err := avatar.ValidateDisplayName(*raw.Name); err != nil {
				return m, refusedMessage("join's name is the name an agent is shown by: %v", err)
			}
			m.Name = *raw.Name
		}
	case "leave":
	case "pose":
		p, err := parsePose(raw.Head, raw.Left, raw.Right)
		if err != nil {
			return m, err
		}
		m.Pose = &p
	default:
		return m, refusedMessage("unknown message type %s", strconv.Quote(raw.Type))
	}
	return m, nil
}

// retryAfter is what a client refused a live connection is told to wait:
// a connection of the avatar has to end first.
const retryAfter = 30 * time.Second

// handleLive upgrades to the realm WebSocket. The session is checked like
// any request (cookie or bearer header); the origin must be the realm's, or
// a page elsewhere could ride the cookie.
func (s *Service) handleLive(e *edge.Edge, w http.ResponseWriter, req *http.Request, p edge.Principal) {
	if p.IsAgent() && s.deps.Agents == nil {
		e.WriteError(w, req, errNoAgents)
		return
	}
	holder := p.Avatar.ID
	if p.IsAgent() {
		holder = p.Agent.ID
	}
	if max := s.deps.MaxPerAvatar; max > 0 && s.sockets.othersOfAvatar(holder, connectionKey(p)) >= max {
		e.WriteError(w, req, edge.TooMany(retryAfter, fmt.Sprintf("this avatar holds %d realm connections on this node, the most it may; close one (or sign out of a session) first", max)))
		return
	}
	upgrader := websocket.Upgrader{
		// No buffer sizes and no pool: the connection reads and writes
		// through the buffers the HTTP server hijacked with it (4 KiB
		// each), which it hands over for good. Buffers of the socket's
		// own would be held beside them (4 KiB more a connection for
		// reading alone). A message leaves as one frame whatever its
		// size: what does not fit in the buffer is written from the
		// message itself, uncopied.
		CheckOrigin: func(req *http.Request) bool {
			o := req.Header.Get("Origin")
			return o == "" || slices.Contains(s.deps.Origins(), o)
		},
	}
	ws, err := upgrader.Upgrade(w, req, nil)
	if err != nil {
		return // the upgrader has answered
	}
	// A small kernel send buffer keeps a slow client's backlog in the
	// realm's queue, where the fan-out sees it and decimates, instead of
	// megabytes of stale poses in the kernel (autotuned buffers grow to
	// several MiB, minutes of poses for a client reading slowly).
	setWriteBuffer(ws.NetConn(), liveSocketSendBuffer)
	// The socket outlives its upgrade request, whose context ends when
	// this handler returns: its own keeps the request's values (its id,
	// its trace) and ends when the socket does or the realm stops.
	ctx, cancel := context.WithCancel(context.WithoutCancel(req.Context()))
	stopFollowing := context.AfterFunc(s.deps.Serving, cancel)
	c := &socket{
		ws: ws, ctx: ctx, session: connectionKey(p), sess: p.Session, p: p,
		closing:  make(chan closeFrame, 1),
		presence: s.presence, now: s.now,
	}
	if !p.IsAgent() {
		c.motion = s.deps.Motion.Attach(c)
	}
	c.markUsed() // connecting is a use
	s.takeOver(c)
	end := func() {
		stopFollowing()
		cancel()
	}
	if p.IsAgent() {
		c.push(encodeLive(liveMessage{Type: "hello", V: 1, Agent: agentHello(p)}))
		go s.serveSocket(c, nil, end)
		return
	}
	// A person's socket lives no longer than its session. Its end is
	// armed before the hello, so a client that has read it knows its
	// socket's end is already timed.
	stopWatch := edge.WatchSessionEnd(edge.SessionBound{
		Ctx: c.ctx, Sess: c.sess,
		LastUse: func() time.Time { return time.Unix(0, c.lastUse.Load()) },
		End:     func(reason string) { c.close(closeSessionRevoked, reason) },
	}, s.deps.Sessions, s.deps.SessionIdle, s.deps.Clock, s.log)
	a := s.deps.Trust.Assess(c.ctx, p.Session)
	v := s.deps.Views
	c.push(encodeLive(liveMessage{Type: "hello", V: 1, Session: v.Session(p.Session), Avatar: v.Avatar(p.Avatar), Trust: v.Trust(a)}))
	go s.serveSocket(c, stopWatch, end)
}

// serveSocket runs a connected socket until it ends, its reader on a
// goroutine of its own and its writer on this one; then it lets go of
// what the connection held: the session's watch first (stopWatch, nil
// for an agent), its context last (end).
//
// The handler that upgraded the socket has returned by then, and its
// goroutine has ended. Parked under the HTTP server's and the
// middleware's frames (5.5 KiB of them), the writer would keep, for the
// socket's whole life, the 16 KiB of stack the upgrade grew: the runtime
// halves a stack only when less than a quarter of it is in use.
func (s *Service) serveSocket(c *socket, stopWatch, end func()) {
	defer end()
	defer s.sockets.remove(c)
	defer s.endMotion(c)
	defer s.presence.end(c)
	if stopWatch != nil {
		defer stopWatch()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.liveReader(c)
	}()
	if c.p.IsAgent() {
		go s.watchAgentEnd(c, done)
	}
	s.liveWriter(c, done)
}

// endMotion is the end of a connection's motion: its peer connection
// closes and it lets go of the session's stream.
func (s *Service) endMotion(c *socket) {
	c.closed.Store(true)
	if c.motion != nil {
		c.motion.End()
	}
}

// liveReader reads until the connection fails: JSON control messages as
// text, XR frame messages as binary (the transport where WebRTC is not
// available).
func (s *Service) liveReader(c *socket) {
	c.ws.SetReadLimit(liveMaxMessage)
	_ = c.ws.SetReadDeadline(time.Now().Add(livePongWait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(livePongWait)) })
	// One buffer per connection, reused for every message: frames arrive
	// at headset rate and must not allocate.
	var buf bytes.Buffer
	for {
		kind, rd, err := c.ws.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(rd)
		}
		if errors.Is(err, websocket.ErrReadLimit) {
			drainOversized(c.ws)
		}
		if err != nil {
			return
		}
		c.markUsed()
		if c.closed.Load() {
			// Told to close: what the client sent meanwhile is read and
			// dropped until its close frame, so the socket ends cleanly.
			continue
		}
		if kind == websocket.BinaryMessage {
			if c.motion == nil {
				c.refuse(codeInvalid, "an agent streams no XR frames", true)
				continue
			}
			// How long the message's newest bytes waited in the socket's
			// receive queue: the node's own delay, not the client's.
			if held, ok := netstamp.Held(c.ws.NetConn(), time.Now()); ok {
				c.motion.FramesHeld(xr.TransportWebSocket, buf.Bytes(), held)
			} else {
				c.motion.Frames(xr.TransportWebSocket, buf.Bytes())
			}
			continue
		}
		s.control(c, buf.Bytes())
	}
}

// control handles a text message: a JSON control message. It is a
// function of its own so that the reader's frame, under which every
// frame message is scored, holds none of its locals.
//
//go:noinline
func (s *Service) control(c *socket, msg []byte) {
	if !c.limit.allow(c.now()) {
		if c.limit.abusive() {
			c.close(closeTooManyMessages, "too many messages: at most 50 control messages a second")
			return
		}
		c.refuse(codeRateLimited, "too many control messages: at most 50 a second; messages were dropped", true)
		return
	}
	m, err := parseLiveMessage(msg)
	if errors.Is(err, errLiveInvalidText) {
		c.close(closeInvalidPayload, closeReason(messageDetail(err)))
		return
	}
	if err != nil {
		c.refuse(codeInvalid, messageDetail(err), false)
		return
	}
	if c.motion == nil && strings.HasPrefix(m.Type, "webrtc.") {
		c.refuse(codeInvalid, "an agent signals no WebRTC: it streams no XR frames", false)
		return
	}
	switch m.Type {
	case "ping":
		c.push(encodeLive(liveMessage{Type: "pong"}))
	case "webrtc.offer":
		var busy *xr.BusyError
		if err := c.motion.Offer(m.SDP); errors.As(err, &busy) {
			c.refuseBusy(busy, false) // an offer is always answered
		} else if err != nil {
			c.pushError(err.Error(), true)
		}
	case "webrtc.candidate":
		if err := c.motion.Candidate(m.Candidate); err != nil {
			c.pushError(err.Error(), true)
		}
	case "join":
		s.presence.join(c, m.Scene, m.Name)
	case "leave":
		s.presence.leave(c)
	case "pose":
		if !s.presence.pose(c, *m.Pose) {
			c.refuse(codeNotJoined, "pose needs a joined scene: send join first", true)
		}
	}
}

// livePrincipal is the connection's principal as it is now: its session,
// and its avatar read again, so that a join or zone decision uses the
// avatar's current roles, not the ones it had when it connected (a
// demoted operator loses zone access at its next step, not at its next
// connection). The read is the one every HTTP request makes (a cached read
// that the avatar change feed keeps fresh). An avatar that cannot be read
// is refused: the decision fails closed.
func (s *Service) livePrincipal(ctx context.Context, c *socket) (edge.Principal, error) {
	av, err := s.deps.Avatars.GetCached(ctx, c.p.Avatar.ID)
	if err != nil {
		s.log.Warn("read the avatar for a live decision", "avatar", c.p.Avatar.ID, "err", err)
		return edge.Principal{}, errors.New("the realm could not read your avatar to decide; try again")
	}
	return edge.Principal{Session: c.sess, Avatar: av, ViaCookie: c.p.ViaCookie, Agent: c.p.Agent}, nil
}

// setWriteBuffer sets the kernel send buffer of the TCP connection
// beneath c, through the connections that wrap it (the realm's listener
// wraps each in a cork.Conn).
func setWriteBuffer(c net.Conn, bytes int) {
	for range 8 { // a chain of wrappers, not a cycle
		if tc, ok := c.(interface{ SetWriteBuffer(int) error }); ok {
			_ = tc.SetWriteBuffer(bytes)
			return
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return
		}
		c = u.NetConn()
	}
}

// writeBatch writes msgs, the messages the writer took at once, and
// reports false when the connection failed. Over a connection that can be
// held they leave in one system call: a window's score and the stream's
// status are queued together (xr's ingestion), and each write(2) of its
// own cost about a twentieth of a busy node's CPU.
func (c *socket) writeBatch(held *cork.Conn, msgs [][]byte) bool {
	if len(msgs) == 0 {
		return true
	}
	hold := held != nil && len(msgs) > 1 // one message is one write anyway
	if hold {
		held.Hold()
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(liveWriteWait))
	ok := true
	for _, msg := range msgs {
		c.queued.Add(-int64(len(msg)))
		if ok {
			ok = c.ws.WriteMessage(websocket.TextMessage, msg) == nil
		}
		recyclePoses(msg)
	}
	if hold {
		ok = held.Flush() == nil && ok
	}
	return ok
}

// liveWriter owns every write to the socket, as gorilla/websocket requires.
func (s *Service) liveWriter(c *socket, readerDone <-chan struct{}) {
	ping := time.NewTicker(livePingPeriod)
	defer ping.Stop()
	defer c.ws.Close()
	ready := c.send.wait()
	held := cork.Of(c.ws.NetConn())
	batch := make([][]byte, 0, liveWriteBatch)
	for {
		select {
		case <-ready:
			batch = c.send.takeSome(batch[:0], liveWriteBatch)
			if !c.writeBatch(held, batch) {
				return
			}
			clear(batch) // the messages go back to their pools, not held here
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(liveWriteWait)); err != nil {
				return
			}
		case f := <-c.closing:
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(f.code, f.reason), time.Now().Add(liveWriteWait))
			// The closing handshake: the reader ends at the client's
			// answering close frame. Closing the socket before it, with
			// the client's messages unread, would reset the connection
			// and lose the close frame that says why.
			select {
			case <-readerDone:
			case <-time.After(liveDrainWait):
			}
			return
		case <-c.ctx.Done():
			// The realm is stopping: hijacked connections are not drained
			// by the HTTP server, so they are told here.
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "the realm node is stopping; reconnect"), time.Now().Add(liveWriteWait))
			return
		case <-readerDone:
			return
		}
	}
}
