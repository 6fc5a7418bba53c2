package realm

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/trust"
)

// Close codes of the realm WebSocket (4000-4999 are the application's).
const (
	closeSessionRevoked = 4401 // the session was revoked or expired: sign in again
	closeTooSlow        = 4408 // the client did not keep up with its messages
)

const (
	liveSendQueue  = 64               // messages queued per connection before it is cut off as too slow
	liveWriteWait  = 5 * time.Second  // a single write may take this long
	livePingPeriod = 25 * time.Second // keeps NAT and proxies from dropping an idle connection
	livePongWait   = 60 * time.Second
	liveMaxMessage = 16 << 10 // client messages are small control messages
)

// liveConn is one WebSocket of a session. Writes go through send so that a
// slow client never blocks the realm: when its queue is full it is closed.
type liveConn struct {
	ws      *websocket.Conn
	session string
	send    chan []byte
	// closing carries the close frame to send, once.
	closing   chan closeFrame
	closeOnce sync.Once
}

type closeFrame struct {
	code   int
	reason string
}

func (c *liveConn) close(code int, reason string) {
	c.closeOnce.Do(func() { c.closing <- closeFrame{code, reason} })
}

func (c *liveConn) push(msg []byte) {
	select {
	case c.send <- msg:
	default:
		c.close(closeTooSlow, "too slow: messages were not read in time")
	}
}

// liveHub indexes this node's live connections by session, so revocations
// and trust changes reach them.
type liveHub struct {
	mu    sync.Mutex
	conns map[string][]*liveConn
}

func newLiveHub() *liveHub { return &liveHub{conns: map[string][]*liveConn{}} }

func (h *liveHub) add(c *liveConn) {
	h.mu.Lock()
	h.conns[c.session] = append(h.conns[c.session], c)
	h.mu.Unlock()
}

func (h *liveHub) remove(c *liveConn) {
	h.mu.Lock()
	list := slices.DeleteFunc(h.conns[c.session], func(x *liveConn) bool { return x == c })
	if len(list) == 0 {
		delete(h.conns, c.session)
	} else {
		h.conns[c.session] = list
	}
	h.mu.Unlock()
}

func (h *liveHub) of(sessionID string) []*liveConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.conns[sessionID])
}

func (h *liveHub) closeSession(sessionID string, code int, reason string) int {
	conns := h.of(sessionID)
	for _, c := range conns {
		c.close(code, reason)
	}
	return len(conns)
}

func (h *liveHub) pushSession(sessionID string, msg []byte) {
	for _, c := range h.of(sessionID) {
		c.push(msg)
	}
}

// liveMessage is the envelope of every message on the realm WebSocket.
type liveMessage struct {
	Type string `json:"type"`
	V    int    `json:"v,omitempty"`
	// hello
	Session map[string]any `json:"session,omitempty"`
	Avatar  map[string]any `json:"avatar,omitempty"`
	// hello and trust
	Trust map[string]any `json:"trust,omitempty"`
	// error
	Error string `json:"error,omitempty"`
}

func encodeLive(m liveMessage) []byte {
	b, _ := json.Marshal(m)
	return b
}

// handleLive upgrades to the realm WebSocket. The session is checked like
// any request (cookie or bearer header); the origin must be the realm's, or
// a page elsewhere could ride the cookie.
func (r *Realm) handleLive(w http.ResponseWriter, req *http.Request, p principal) {
	upgrader := websocket.Upgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		CheckOrigin: func(req *http.Request) bool {
			o := req.Header.Get("Origin")
			return o == "" || slices.Contains(r.origins(), o)
		},
	}
	ws, err := upgrader.Upgrade(w, req, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &liveConn{ws: ws, session: p.session.ID, send: make(chan []byte, liveSendQueue), closing: make(chan closeFrame, 1)}
	r.live.add(c)
	defer r.live.remove(c)

	a := r.trust.assess(req.Context(), p.session)
	c.push(encodeLive(liveMessage{Type: "hello", V: 1, Session: sessionView(p.session), Avatar: avatarView(p.avatar), Trust: trustView(a)}))

	done := make(chan struct{})
	go func() {
		defer close(done)
		r.liveReader(c)
	}()
	r.liveWriter(c, done)
}

// liveReader reads control messages until the connection fails. The
// protocol grows with the world server; for now a client may ping.
func (r *Realm) liveReader(c *liveConn) {
	c.ws.SetReadLimit(liveMaxMessage)
	_ = c.ws.SetReadDeadline(time.Now().Add(livePongWait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(livePongWait)) })
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m liveMessage
		if kind != websocket.TextMessage || json.Unmarshal(data, &m) != nil {
			c.push(encodeLive(liveMessage{Type: "error", Error: "messages are JSON objects with a type"}))
			continue
		}
		switch m.Type {
		case "ping":
			c.push(encodeLive(liveMessage{Type: "pong"}))
		default:
			c.push(encodeLive(liveMessage{Type: "error", Error: "unknown message type " + quote(m.Type)}))
		}
	}
}

// liveWriter owns every write to the socket, as gorilla/websocket requires.
func (r *Realm) liveWriter(c *liveConn, readerDone <-chan struct{}) {
	ping := time.NewTicker(livePingPeriod)
	defer ping.Stop()
	defer c.ws.Close()
	for {
		select {
		case msg := <-c.send:
			_ = c.ws.SetWriteDeadline(time.Now().Add(liveWriteWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(liveWriteWait)); err != nil {
				return
			}
		case f := <-c.closing:
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(f.code, f.reason), time.Now().Add(liveWriteWait))
			return
		case <-readerDone:
			return
		}
	}
}

// pushTrust sends a session's trust change to its live connections.
func (r *Realm) pushTrust(sessionID string, a trust.Assessment) {
	r.live.pushSession(sessionID, encodeLive(liveMessage{Type: "trust", Trust: trustView(a)}))
}

// followRevocations closes the live connections of every session revoked
// anywhere in the cluster. Every node runs it, so a sign-out through one
// node ends the session's WebSocket on another.
func (r *Realm) followRevocations(ctx context.Context, revocations <-chan session.Revocation) {
	for rev := range revocations {
		if n := r.live.closeSession(rev.SessionID, closeSessionRevoked, "session revoked: "+rev.Reason); n > 0 {
			r.log.Info("closed revoked session's connections", "session", rev.SessionID, "connections", n, "reason", rev.Reason)
		}
		r.trust.forget(rev.SessionID)
	}
	_ = ctx
}
