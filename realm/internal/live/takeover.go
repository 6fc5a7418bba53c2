package live

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// closeReplaced ends a connection whose session connected again, on this
// node or another: only the newest connection of a session stays open.
const closeReplaced = 4409

// replacedReason is the close reason a replaced connection reads. A client
// must not reconnect on its own after it: the newer connection would be
// replaced in turn, and two tabs would take the session from each other
// forever.
const replacedReason = "replaced: this session connected again (another tab, window or device); only the newest connection of a session stays open"

// One session, one realm WebSocket. A second connection with the same
// session is either a second tab of the same person or someone else holding
// the session's token; either way, two connections would stream two motion
// feeds and two presences for one avatar. The newest wins, because the old
// one may be a half-open socket of a client that reconnected after its
// network dropped: refusing the new one would lock that client out until
// the old socket's keepalive expired. The older connection is closed with
// 4409 and a reason, and nothing else changes for anyone.
//
// Across nodes, each node announces its new connections on
// <prefix>.live.session.<session>; a node closes its own connections of
// that session that are older than the announced one. Age is the connect
// time, then node and sequence, so that two connections made at the same
// moment on two nodes do not close each other.

// liveStamp orders the connections of one session.
type liveStamp struct {
	At   int64  `json:"at"` // unix nanoseconds of the upgrade
	Node string `json:"node"`
	Seq  uint64 `json:"seq"`
}

// before reports whether s is an older connection than o.
func (s liveStamp) before(o liveStamp) bool {
	if s.At != o.At {
		return s.At < o.At
	}
	if s.Node != o.Node {
		return s.Node < o.Node
	}
	return s.Seq < o.Seq
}

func (s *Service) liveSessionSubject(sessionID string) string {
	return s.deps.Prefix + ".live.session." + sessionID
}

// subscribeTakeovers listens to the other nodes' announcements of new
// connections.
func (s *Service) subscribeTakeovers() (*nats.Subscription, error) {
	sub, err := s.deps.NC.Subscribe(s.deps.Prefix+".live.session.*", func(m *nats.Msg) {
		var st liveStamp
		if err := json.Unmarshal(m.Data, &st); err != nil || st.Node == "" {
			s.log.Warn("live: ignoring a malformed connection announcement", "subject", m.Subject)
			return
		}
		if st.Node == s.deps.Node {
			return // this node closed its older connections when it took the new one
		}
		sessionID := m.Subject[len(s.deps.Prefix+".live.session."):]
		s.sockets.replaceOlder(sessionID, st)
	})
	if err != nil {
		return nil, fmt.Errorf("realm: live: subscribe to connection announcements: %w", err)
	}
	return sub, nil
}

// takeOver registers c as its session's connection on this node, closes
// the older ones here, and tells the other nodes to close theirs.
func (s *Service) takeOver(c *socket) {
	c.stamp = liveStamp{At: time.Now().UnixNano(), Node: s.deps.Node, Seq: s.sockets.seq.Add(1)}
	s.sockets.add(c)
	s.sockets.replaceOlder(c.session, c.stamp)
	data, _ := json.Marshal(c.stamp)
	if err := s.deps.NC.Publish(s.liveSessionSubject(c.session), data); err != nil {
		// The other nodes keep an older connection open until it ends by
		// itself: no harm to anyone else, and logged.
		s.log.Warn("live: could not announce a new connection to the other nodes", "session", c.session, "err", err)
	}
}

// replaceOlder closes this node's connections of the session that are
// older than the connection stamped s.
func (h *sockets) replaceOlder(sessionID string, s liveStamp) {
	for _, c := range h.of(sessionID) {
		if c.stamp.before(s) {
			c.close(closeReplaced, replacedReason)
		}
	}
}
