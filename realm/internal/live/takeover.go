package live

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/internal/clustermsg"
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
//
// An announcement closes sockets, so it is a cluster message like
// presence: signed by its node (Deps.Cluster) and checked before it is
// acted on. Anyone else who reaches NATS could otherwise close any
// session's connection by naming it in a subject; a forged announcement is
// dropped, counted and logged with the reason it did not verify.

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
		if err := s.deps.Cluster.Verify(m, m.Subject, s.now()); err != nil {
			s.refuseForged(m, "takeover", err)
			return
		}
		var st liveStamp
		if err := json.Unmarshal(m.Data, &st); err != nil || st.Node == "" {
			s.log.Warn("live: ignoring a malformed connection announcement", "subject", m.Subject)
			return
		}
		if sender := m.Header.Get(nodeHeader); st.Node != sender {
			s.refuseForged(m, "takeover", fmt.Errorf("%w: announces a connection of node %q, sent by node %q", clustermsg.ErrUnauthenticated, st.Node, sender))
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
	c.stamp = liveStamp{At: s.now().UnixNano(), Node: s.deps.Node, Seq: s.sockets.seq.Add(1)}
	s.sockets.add(c)
	s.sockets.replaceOlder(c.session, c.stamp)
	data, _ := json.Marshal(c.stamp)
	if err := s.publishSigned(s.liveSessionSubject(c.session), data); err != nil {
		// The other nodes keep an older connection open until it ends by
		// itself: no harm to anyone else, and logged.
		s.log.Warn("live: could not announce a new connection to the other nodes", "session", c.session, "err", err)
	}
}

// publishSigned publishes data on subject as this node, signed for the
// other nodes to check.
func (s *Service) publishSigned(subject string, data []byte) error {
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{nodeHeader: {s.deps.Node}}}
	s.deps.Cluster.Sign(msg, subject, s.now())
	return s.deps.NC.PublishMsg(msg)
}

// refuseForged drops a takeover or avatar notice that did not verify: it
// is logged with why (it would have closed or written to someone's
// sockets) and counted by kind.
func (s *Service) refuseForged(m *nats.Msg, kind string, why error) {
	s.log.Warn("live: refused a cluster message that is not a node's", "kind", kind, "subject", m.Subject,
		"claimed_node", m.Header.Get(nodeHeader), "reason", why)
	s.deps.Forged(kind)
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
