package audit

import (
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
	Kind   string `json:"kind"`  // what was done to the chain, one of the Kind constants
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

// Kinds of finding: what was done to a chain, as Verify and VerifyAll
// name it.
const (
	KindDeleted    = "event-deleted"   // an event is missing from the middle of the chain
	KindInserted   = "event-inserted"  // an event that the node did not write is in the chain
	KindEdited     = "event-edited"    // an event's bytes changed
	KindInvalid    = "event-invalid"   // a stored line is not an event
	KindPurged     = "chain-purged"    // the chain's first events are gone
	KindTruncated  = "chain-truncated" // the chain's last events are gone
	KindRewritten  = "chain-rewritten" // the chain no longer matches a checkpoint signed of it
	KindRehashed   = "chain-rehashed"  // ... although every link of its hash chain verifies
	KindVanished   = "chain-vanished"  // a known node has no chain at all
	KindBadAnchor  = "checkpoint-invalid"
	KindRefused    = "checkpoint-refused"  // a witness refused a node's checkpoint
	KindCPsRemoved = "checkpoints-removed" // AUDITCP lacks checkpoints a data directory remembers
)

// Finding is one thing wrong with the audit log, precisely: which node,
// what kind, at which event (Index, from 1) or checkpoint size (Size).
type Finding struct {
	Node   string `json:"node"`
	Kind   string `json:"kind"`
	Index  uint64 `json:"index,omitempty"`
	Size   uint64 `json:"size,omitempty"`
	Detail string `json:"detail"`
}

// chainWalk checks a chain's hash links one event at a time and builds
// its Merkle tree over every stored event, past a break too.
type chainWalk struct {
	rep      Report
	prevHash string
	tree     *merkleTree
	treeErr  error
}

func (w *chainWalk) line(seq uint64, line []byte) {
	if w.tree != nil && w.treeErr == nil {
		w.treeErr = w.tree.append(line)
	}
	if w.rep.Break != nil {
		return
	}
	node := w.rep.Node
	want := w.rep.Events + 1
	brk := func(kind, reason string) { w.rep.Break = &Break{Seq: seq, Index: want, Kind: kind, Reason: reason} }
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		brk(KindInvalid, "not a valid event: "+err.Error())
		return
	}
	switch {
	case ev.Node != node:
		brk(KindInserted, fmt.Sprintf("event names node %q on node %q's chain: inserted", ev.Node, node))
	case ev.Index > want && want == 1:
		brk(KindPurged, fmt.Sprintf("the chain starts at index %d where 1 was expected: an event was removed or inserted (events 1 to %d were purged)", ev.Index, ev.Index-1))
	case ev.Index > want:
		brk(KindDeleted, fmt.Sprintf("index %d where %d was expected: an event was removed or inserted (events %d to %d are missing)", ev.Index, want, want, ev.Index-1))
	case ev.Index < want:
		brk(KindInserted, fmt.Sprintf("index %d where %d was expected: an event was removed or inserted (an event was inserted before it)", ev.Index, want))
	case ev.Prev != w.prevHash:
		what := fmt.Sprintf("event #%d was edited, or #%d replaced", want-1, want)
		if want == 1 {
			what = "the first event was replaced"
		}
		brk(KindEdited, "prev hash does not match the event before it: an event was edited or replaced ("+what+")")
	default:
		w.prevHash = hashOf(line)
		w.rep.Events, w.rep.Head = want, w.prevHash
	}
}

// Verify walks a node's chain from its first event and names the first
// broken link: an event that does not parse, is not this node's, skips or
// repeats an index (a deleted or inserted event or block), or whose prev
// hash is not the hash of the event stored before it (an edited event). A
// block (one stored message) holds one or more events, one per line; the
// chain runs through the events, across blocks. A chain that verifies has a
// nil Break. The error is for failures to read, not for a broken chain.
//
// A hash chain alone cannot tell a chain cut at its end or rewritten and
// re-hashed as a whole from one that was never longer: VerifyAll holds the
// chains to signed checkpoints for that.
func Verify(ctx context.Context, st *store.Store, node string) (Report, error) {
	if !nodePattern.MatchString(node) {
		return Report{}, fmt.Errorf("audit: node name %q must match %s", node, nodePattern)
	}
	stream, err := st.Stream(ctx, StreamConfig)
	if err != nil {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	w := &chainWalk{rep: Report{Node: node}}
	blocks, err := scanChain(ctx, stream, node, w.line)
	if err != nil {
		return Report{}, err
	}
	w.rep.Blocks = blocks
	return w.rep, nil
}

// Chains lists the nodes that have an audit chain.
func Chains(ctx context.Context, st *store.Store) ([]string, error) {
	stream, err := st.Stream(ctx, StreamConfig)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return nodesOn(ctx, stream, "audit.*", "audit.")
}

func nodesOn(ctx context.Context, stream *store.Stream, filter, prefix string) ([]string, error) {
	subjects, err := stream.Subjects(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("audit: list chains: %w", err)
	}
	nodes := make([]string, 0, len(subjects))
	for subj := range subjects {
		if node, ok := strings.CutPrefix(subj, prefix); ok && nodePattern.MatchString(node) {
			nodes = append(nodes, node)
		}
	}
	sort.Strings(nodes)
	return nodes, nil
}
