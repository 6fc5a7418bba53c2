package twins

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/twin"
)

// The feed speaks the realm WebSocket's close codes and timings
// (clients/PROTOCOL.md): a console is a client of the same kind.
const (
	closeSessionRevoked = edge.CloseSessionEnded // the session was revoked or expired: sign in again
	closeTooSlow        = edge.CloseTooSlow      // the console did not keep up with its messages
)

// Message is one message of the twin console feed (GET /v1/twins/feed):
// "state" when a gateway reports an actuator, "outcome" when a command
// was carried out or refused by its gateway, "approval" when a critical
// command starts waiting for a second operator.
type Message struct {
	Type     string          `json:"type"`
	Twin     string          `json:"twin,omitempty"`
	Actuator string          `json:"actuator,omitempty"`
	State    *twin.State     `json:"state,omitempty"`
	Outcome  *command.Answer `json:"outcome,omitempty"`
	Approval *command.Answer `json:"approval,omitempty"`
}

// about is the twin a message is about, "" for none.
func (m Message) about() string {
	switch {
	case m.Twin != "":
		return m.Twin
	case m.Outcome != nil:
		return m.Outcome.Command.Twin
	case m.Approval != nil:
		return m.Approval.Command.Twin
	}
	return ""
}

// feedHub fans the feed out to this node's console connections. A
// console that does not keep up is disconnected, never waited for.
type feedHub struct {
	mu    sync.Mutex
	conns map[*console]struct{}
}

type closeFrame struct {
	code   int
	reason string
}

type console struct {
	session string
	avatar  string
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
func (c *console) close() { c.end(closeTooSlow, "feed closed") }

// end closes the console with code and reason; only the first call counts.
func (c *console) end(code int, reason string) {
	c.once.Do(func() {
		c.why = closeFrame{code, reason}
		close(c.closed)
	})
}

func newFeedHub() *feedHub { return &feedHub{conns: map[*console]struct{}{}} }

// feedRetryAfter is the Retry-After of a feed refused by the cap: a
// console usually closes one when its page goes away.
const feedRetryAfter = 30 * time.Second

// admit registers c unless its avatar holds max consoles already (max <=
// 0: no cap). Counting and registering under one lock means two feeds
// opened at once cannot both take the last place.
func (h *feedHub) admit(c *console, max int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if max > 0 {
		n := 0
		for other := range h.conns {
			if other.avatar == c.avatar {
				n++
			}
		}
		if n >= max {
			return false
		}
	}
	h.conns[c] = struct{}{}
	return true
}

func (h *feedHub) remove(c *console) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

func (h *feedHub) push(m Message) {
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
	about := m.about()
	h.mu.Lock()
	conns := make([]*console, 0, len(h.conns))
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

// Outcome, Approval and State make the hub the command service's Events.
func (h *feedHub) Outcome(a *command.Answer)  { h.push(Message{Type: "outcome", Outcome: a}) }
func (h *feedHub) Approval(a *command.Answer) { h.push(Message{Type: "approval", Approval: a}) }
func (h *feedHub) State(twinID, actuatorID string, s twin.State) {
	h.push(Message{Type: "state", Twin: twinID, Actuator: actuatorID, State: &s})
}

// closeSession ends the session's consoles on this node with 4401.
func (h *feedHub) closeSession(sessionID, reason string) int {
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

func (h *feedHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		c.close()
	}
}

// handleFeed upgrades to the console feed. It first sends a "twins"
// message with every twin the avatar may view and its last state, then
// the live messages about those twins. What the avatar may view is decided
// (and audited) when it connects; a change of roles applies when it
// connects again. An avatar that may view no twin is refused before the
// upgrade, and so is one that holds Deps.MaxFeedsPerAvatar feeds on this
// node already (429 with Retry-After).
func (a *API) handleFeed(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	viewer := a.viewer(req.Context(), p)
	visible := viewer.visible(req.Context())
	if len(visible) == 0 && viewer.firstDeny != nil {
		a.edge.WriteError(w, req, viewer.refusal())
		return
	}
	c := &console{session: p.Session.ID, avatar: p.Avatar.ID, may: map[string]bool{}, send: make(chan []byte, edge.SocketSendQueue), closed: make(chan struct{})}
	for _, t := range visible {
		c.may[t.ID] = true
	}
	h := a.feed
	if max := a.deps.MaxFeedsPerAvatar; !h.admit(c, max) {
		a.edge.WriteError(w, req, edge.TooMany(feedRetryAfter, fmt.Sprintf("this avatar holds %d twin feeds on this node, the most it may; close one first", max)))
		return
	}
	defer h.remove(c)
	upgrader := websocket.Upgrader{
		ReadBufferSize: 1024, WriteBufferSize: 4096,
		CheckOrigin: func(req *http.Request) bool {
			o := req.Header.Get("Origin")
			return o == "" || slices.Contains(a.deps.Origins(), o)
		},
	}
	ws, err := upgrader.Upgrade(w, req, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	twins := []TwinView{}
	for _, t := range visible {
		twins = append(twins, a.viewTwin(t))
	}
	hello, _ := json.Marshal(map[string]any{"type": "twins", "twins": twins})
	select {
	case c.send <- hello:
	default:
		// Live messages filled the queue before the first one: push has
		// closed the console already.
	}

	// A console lives no longer than its session. It sends nothing, so
	// its use is the session's HTTP requests (the console's own polls).
	stopWatch := a.deps.WatchSession(req.Context(), p.Session, func(reason string) { c.end(closeSessionRevoked, reason) })
	defer stopWatch()
	// The reader only notices the close; consoles send nothing else.
	go func() {
		defer c.close()
		ws.SetReadLimit(1024)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	ping := time.NewTicker(edge.SocketPingPeriod)
	defer ping.Stop()
	for {
		select {
		case m := <-c.send:
			_ = ws.SetWriteDeadline(time.Now().Add(edge.SocketWriteWait))
			if err := ws.WriteMessage(websocket.TextMessage, m); err != nil {
				return
			}
		case <-ping.C:
			if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(edge.SocketWriteWait)); err != nil {
				return
			}
		case <-c.closed:
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.why.code, c.why.reason), time.Now().Add(edge.SocketWriteWait))
			return
		}
	}
}
