package cascade

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/clustercast"
)

// ErrMalformed reports a notice that does not decode.
var ErrMalformed = errors.New("cascade: malformed notice")

// maxNoticeBytes bounds a notice before it is decoded: one revocation,
// its by and reason bounded, is well under it.
const maxNoticeBytes = 4 << 10

// notice is what a node publishes to the others: one revocation.
type notice struct {
	Node       string         `json:"node"`
	Revocation revocationWire `json:"revocation"`
}

// revocationWire is an agents.Revocation on the wire; the time is RFC 3339.
type revocationWire struct {
	Kind   string    `json:"kind"`
	ID     string    `json:"id"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

func encodeNotice(node string, rev agents.Revocation) ([]byte, error) {
	b, err := json.Marshal(notice{Node: node, Revocation: revocationWire{Kind: string(rev.Kind), ID: rev.ID, By: rev.By, Reason: rev.Reason, At: rev.At.UTC()}})
	if err != nil {
		return nil, fmt.Errorf("cascade: encode notice: %w", err)
	}
	if len(b) > maxNoticeBytes {
		return nil, fmt.Errorf("cascade: notice of %d bytes, at most %d", len(b), maxNoticeBytes)
	}
	return b, nil
}

// decodeNotice parses a notice and validates its revocation.
func decodeNotice(data []byte) (notice, agents.Revocation, error) {
	if len(data) > maxNoticeBytes {
		return notice{}, agents.Revocation{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(data), maxNoticeBytes)
	}
	var n notice
	if err := clustercast.DecodeStrict(data, &n); err != nil {
		return notice{}, agents.Revocation{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if n.Node == "" {
		return notice{}, agents.Revocation{}, fmt.Errorf("%w: no node", ErrMalformed)
	}
	w := n.Revocation
	rev := agents.Revocation{Kind: agents.RevocationKind(w.Kind), ID: w.ID, By: w.By, Reason: w.Reason, At: w.At}
	if err := rev.Validate(); err != nil {
		return notice{}, agents.Revocation{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return n, rev, nil
}
