package realm

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/twin"
)

// consoleMessage is one message of the twin console feed
// (GET /v1/twins/feed): "state" when a gateway reports an actuator,
// "outcome" when a command was carried out or refused by its gateway,
// "approval" when a critical command starts waiting for a second operator.
type consoleMessage struct {
	Type     string         `json:"type"`
	Twin     string         `json:"twin,omitempty"`
	Actuator string         `json:"actuator,omitempty"`
	State    *twin.State    `json:"state,omitempty"`
	Outcome  *commandAnswer `json:"outcome,omitempty"`
	Approval *commandAnswer `json:"approval,omitempty"`
}

// consoleHub fans the feed out to this node's console connections. A
// console that does not keep up is disconnected, never waited for.
type consoleHub struct {
	mu    sync.Mutex
	conns map[*consoleConn]struct{}
}

type consoleConn struct {
	session string
	// may is the twins this console's avatar may view, decided when it
	// connected: it is sent nothing about any other.
	may    map[string]bool
	send   chan []byte
	closed chan struct{}
	once   sync.Once
	// why is the close frame, set once before closed is closed.
	why closeFrame
}

// close ends a console that did not keep up.
func (c *consoleConn) close() { c.end(closeTooSlow, "feed closed") }

// end closes the console with code and reason; only the first call counts.
func (c *consoleConn) end(code int, reason string) {
	c.once.Do(func() {
		c.why = closeFrame{code, reason}
		close(c.closed)
	})
}

func newConsoleHub() *consoleHub { return &consoleHub{conns: map[*consoleConn]struct{}{}} }

func (h *consoleHub) push(m consoleMessage) {
	h.mu.Lock()
	none := len(h.conns) == 0
	h.mu.Unlock()
	if none {
		return
	}
	data, err := json.Marshal(m)
	if err != nil {
		return
	}
	about := m.twin()
	h.mu.Lock()
	conns := make([]*consoleConn, 0, len(h.conns))
	for c := range h.conns {
		if c.may[about] {
			conns = append(conns, c)
		}
	}
	h.mu.Unlock()
	for _, c := range conns {
		select {
		case c.send <- data:
		default:
			c.close()
		}
	}
}

func (h *consoleHub) state(twinID, actuatorID string, s twin.State) {
	h.push(consoleMessage{Type: "state", Twin: twinID, Actuator: actuatorID, State: &s})
}

// closeSession ends the session's consoles on this node with 4401.
func (h *consoleHub) closeSession(sessionID, reason string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for c := range h.conns {
		if c.session == sessionID {
			c.end(closeSessionRevoked, reason)
			n++
		}
	}
	return n
}

func (h *consoleHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		c.close()
	}
}

// handleTwinFeed upgrades to the console feed. It first sends a "twins"
// message with every twin the avatar may view and its last state, then
// the live messages about those twins. What the avatar may view is decided
// (and audited) when it connects; a change of roles applies when it
// connects again. An avatar that may view no twin is refused before the
// upgrade.
func (r *Realm) handleTwinFeed(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	viewer := r.twinViewer(req.Context(), p)
	visible := viewer.visible(req.Context())
	if len(visible) == 0 && viewer.firstDeny != nil {
		r.edge.WriteError(w, req, viewer.refusal())
		return
	}
	upgrader := websocket.Upgrader{
		ReadBufferSize: 1024, WriteBufferSize: 4096,
		CheckOrigin: func(req *http.Request) bool {
			o := req.Header.Get("Origin")
			return o == "" || slices.Contains(r.origins(), o)
		},
	}
	ws, err := upgrader.Upgrade(w, req, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	c := &consoleConn{session: p.Session.ID, may: map[string]bool{}, send: make(chan []byte, liveSendQueue), closed: make(chan struct{})}
	for _, t := range visible {
		c.may[t.ID] = true
	}
	h := r.twins.console
	h.mu.Lock()
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
	}()
	twins := []twinLive{}
	for _, t := range visible {
		twins = append(twins, r.viewTwin(t))
	}
	hello, _ := json.Marshal(map[string]any{"type": "twins", "twins": twins})
	c.send <- hello

	// A console lives no longer than its session. It sends nothing, so
	// its use is the session's HTTP requests (the console's own polls).
	connected := time.Now()
	readerDone := make(chan struct{})
	go r.watchSessionEnd(sessionBound{
		ctx: req.Context(), sess: p.Session, done: readerDone,
		lastUse: func() time.Time { return connected },
		end:     func(reason string) { c.end(closeSessionRevoked, reason) },
	})
	// The reader only notices the close; consoles send nothing else.
	go func() {
		defer close(readerDone)
		defer c.close()
		ws.SetReadLimit(1024)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	ping := time.NewTicker(livePingPeriod)
	defer ping.Stop()
	for {
		select {
		case m := <-c.send:
			_ = ws.SetWriteDeadline(time.Now().Add(liveWriteWait))
			if err := ws.WriteMessage(websocket.TextMessage, m); err != nil {
				return
			}
		case <-ping.C:
			if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(liveWriteWait)); err != nil {
				return
			}
		case <-c.closed:
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.why.code, c.why.reason), time.Now().Add(liveWriteWait))
			return
		}
	}
}
