package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/zerorealm/zerorealm/internal/store"
)

// Break is the first broken link of a chain.
type Break struct {
	Seq    uint64 `json:"seq"`   // stream sequence of the first event that does not follow
	Index  uint64 `json:"index"` // the index that event should have had
	Reason string `json:"reason"`
}

func (b *Break) Error() string {
	return fmt.Sprintf("audit chain broken at stream seq %d (event #%d): %s", b.Seq, b.Index, b.Reason)
}

// Report is the result of walking one node's chain.
type Report struct {
	Node   string `json:"node"`
	Events uint64 `json:"events"`         // events that verified before the break (or all of them)
	Blocks uint64 `json:"blocks"`         // stored messages (blocks of events) read
	Head   string `json:"head,omitempty"` // hash of the last verified event
	Break  *Break `json:"break,omitempty"`
}

// OK reports whether the whole chain verified.
func (r Report) OK() bool { return r.Break == nil }

// ErrChainBroken is wrapped by the *Break that Verify reports.
var ErrChainBroken = errors.New("audit: chain broken")

// Verify walks a node's chain from its first event and names the first
// broken link: an event that does not parse, is not this node's, skips or
// repeats an index (a deleted or inserted event or block), or whose prev
// hash is not the hash of the event stored before it (an edited event). A
// block (one stored message) holds one or more events, one per line; the
// chain runs through the events, across blocks. A chain that verifies has a
// nil Break. The error is for failures to read, not for a broken chain.
func Verify(ctx context.Context, st *store.Store, node string) (Report, error) {
	if !nodePattern.MatchString(node) {
		return Report{}, fmt.Errorf("audit: node name %q must match %s", node, nodePattern)
	}
	stream, err := st.Stream(ctx, StreamConfig)
	if err != nil {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	rep := Report{Node: node}
	var prevHash string
	follower, err := stream.Follow(ctx, Subject(node), func(m store.Msg) error {
		if rep.Break != nil {
			return nil
		}
		rep.Blocks++
		for line := range bytes.SplitSeq(m.Data, []byte{'\n'}) {
			want := rep.Events + 1
			var ev Event
			if err := json.Unmarshal(line, &ev); err != nil {
				rep.Break = &Break{Seq: m.Seq, Index: want, Reason: "not a valid event: " + err.Error()}
				return nil
			}
			switch {
			case ev.Node != node:
				rep.Break = &Break{Seq: m.Seq, Index: want, Reason: fmt.Sprintf("event names node %q on node %q's chain", ev.Node, node)}
			case ev.Index != want:
				rep.Break = &Break{Seq: m.Seq, Index: want, Reason: fmt.Sprintf("index %d where %d was expected: an event was removed or inserted", ev.Index, want)}
			case ev.Prev != prevHash:
				rep.Break = &Break{Seq: m.Seq, Index: want, Reason: "prev hash does not match the event before it: an event was edited or replaced"}
			default:
				prevHash = hashOf(line)
				rep.Events, rep.Head = want, prevHash
				continue
			}
			return nil
		}
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("audit: read chain %q: %w", node, err)
	}
	follower.Stop()
	return rep, nil
}

// Chains lists the nodes that have an audit chain.
func Chains(ctx context.Context, st *store.Store) ([]string, error) {
	stream, err := st.Stream(ctx, StreamConfig)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	subjects, err := stream.Subjects(ctx, "audit.*")
	if err != nil {
		return nil, fmt.Errorf("audit: list chains: %w", err)
	}
	nodes := make([]string, 0, len(subjects))
	for subj := range subjects {
		if node, ok := strings.CutPrefix(subj, "audit."); ok && nodePattern.MatchString(node) {
			nodes = append(nodes, node)
		}
	}
	sort.Strings(nodes)
	return nodes, nil
}
