package biometrics

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

// PathStream is the JetStream stream (under the store's prefix) that
// carries the nodes' sealed path cells, one subject per node.
const (
	PathStream        = "BIOPATHS"
	pathSubjectPrefix = "biopaths."
)

// ErrPathFeed reports a PathFeed that cannot start: a bad node name, a
// missing engine or store.
var ErrPathFeed = errors.New("biometrics: invalid path feed")

// Defaults of PathFeedConfig.
const (
	DefaultPathFlushEvery = 250 * time.Millisecond
	DefaultPathQueue      = 1024
	// DefaultPathMessages bounds each node's subject: at most this many
	// batches of at most MaxPathBatchCells cells (64 KiB) are kept. At
	// four batches a second that is ReplayHistory's ten minutes; a node
	// that fills its batches faster keeps a shorter history, as its own
	// registry does under ReplayMaxPoints.
	DefaultPathMessages = 2400
)

// PathFeedConfig configures a PathFeed. Zero values are the defaults.
type PathFeedConfig struct {
	Store  *store.Store
	Engine *Engine
	// Node names this node: 1 to 64 letters, digits, '-' or '_'. Its own
	// batches are not taken back in.
	Node string
	// Key is the cluster's 32-byte template key: every node must have the
	// same one, or its cells mean nothing to the others. Two keys are
	// derived from it, one for the cells and one to seal the batches.
	Key []byte
	// RetiredKeys are the template keys a rotation retired (see
	// NewTemplateStore): batches sealed under them still open, and their
	// cells are still looked up, so that no replay slips through while a
	// cluster rotates or within ReplayHistory after it did.
	RetiredKeys [][]byte
	// FlushEvery (default 250ms) is how long cells wait to be sent
	// together; a replay through another node is caught only once they
	// arrive there.
	FlushEvery time.Duration
	// Queue (default 1024) is how many filed batches may wait for the
	// sender; when it is full new ones are dropped and counted, so that a
	// slow NATS never slows a stream.
	Queue int
	// MaxMessages (default DefaultPathMessages) bounds each node's
	// subject in the stream.
	MaxMessages int64
	// Clock tells when batches arrive (default time.Now).
	Clock  func() time.Time
	Logger *slog.Logger
}

// PathFeedStats counts what a PathFeed did.
type PathFeedStats struct {
	// Sent and SentCells: batches and cells stored in the stream.
	Sent, SentCells uint64
	// Dropped: cells lost because the queue was full or the append failed.
	Dropped uint64
	// Received and ReceivedCells: peers' batches and cells taken in.
	Received, ReceivedCells uint64
	// Rejected: messages that did not open under the key or did not
	// decode; they change nothing.
	Rejected uint64
}

// PathFeed shares an engine's hashed path cells with the other nodes of
// its cluster through a JetStream stream, and takes theirs in: a recording
// replayed through any node is then compared with the motion every node
// saw (see Engine.SharePaths). What goes through NATS is sealed with
// AES-256-GCM (the node's subject is the associated data, so a batch moved
// to another node's subject does not open), bounded per node
// (MaxMessages), and expires after the engine's ReplayHistory.
type PathFeed struct {
	cfg    PathFeedConfig
	stream *store.Stream
	ring   sealRing
	queue  chan PathBatch
	cancel context.CancelFunc
	done   chan struct{}
	follow *store.Follower
	once   sync.Once
	// earlierRun is the sequence of the last batch on this node's own
	// subject when the feed started: the batches up to it are this node's
	// before it restarted, whose motion its new registry never saw, and
	// are taken in as a peer's; the ones after it are its own (0: none).
	earlierRun uint64

	sent, sentCells, dropped          atomic.Uint64
	received, receivedCells, rejected atomic.Uint64
}

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// pathSealLabel separates the batches' sealing key from the cells' key.
const pathSealLabel = "zerorealm biometrics path feed v1"

// sealedPathVersion is the first byte of every sealed batch.
const sealedPathVersion = 1

// StartPathFeed declares the stream, takes in what the peers shared in
// the last ReplayHistory and what this node shared before it restarted,
// and from then on publishes the engine's cells and follows the peers'.
// Close stops it.
func StartPathFeed(ctx context.Context, cfg PathFeedConfig) (*PathFeed, error) {
	switch {
	case cfg.Store == nil || cfg.Engine == nil:
		return nil, fmt.Errorf("%w: needs a store and an engine", ErrPathFeed)
	case !nodeNameRE.MatchString(cfg.Node):
		return nil, fmt.Errorf("%w: node name %q: 1 to 64 letters, digits, '-' or '_'", ErrPathFeed, cfg.Node)
	case len(cfg.Key) != 32:
		return nil, ErrPathKey
	}
	for _, k := range cfg.RetiredKeys {
		if len(k) != 32 {
			return nil, ErrPathKey
		}
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = DefaultPathFlushEvery
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultPathQueue
	}
	if cfg.MaxMessages <= 0 {
		cfg.MaxMessages = DefaultPathMessages
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ring, err := newSealRing(pathSealLabel, cfg.Key, cfg.RetiredKeys)
	if err != nil {
		return nil, fmt.Errorf("biometrics: path feed key: %w", err)
	}
	history := cfg.Engine.cfg.ReplayHistory
	if history <= 0 {
		return nil, fmt.Errorf("%w: the engine keeps no replay history", ErrPathFeed)
	}
	st, err := cfg.Store.Stream(ctx, store.StreamConfig{
		Name:              PathStream,
		Subjects:          []string{pathSubjectPrefix + ">"},
		MaxAge:            history,
		MaxMsgsPerSubject: cfg.MaxMessages,
	})
	if err != nil {
		return nil, fmt.Errorf("biometrics: path feed: %w", err)
	}
	f := &PathFeed{cfg: cfg, stream: st, ring: ring, queue: make(chan PathBatch, cfg.Queue), done: make(chan struct{})}
	// Read from the leader before this run publishes anything: every
	// batch the node's earlier run had acknowledged is at or below it.
	last, err := st.GetLast(ctx, f.subject(cfg.Node), store.FromLeader())
	switch {
	case err == nil:
		f.earlierRun = last.Seq
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("biometrics: path feed: this node's earlier cells: %w", err)
	}
	if err := cfg.Engine.SharePaths(cfg.Key, f.enqueue, cfg.RetiredKeys...); err != nil {
		return nil, err
	}
	// The feed outlives ctx (a start-up deadline); Close ends it. The
	// initial catch-up is bounded by the store's timeout.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel = cancel
	f.follow, err = st.Follow(runCtx, pathSubjectPrefix+"*", f.apply)
	if err != nil {
		cancel()
		cfg.Engine.replay.peers.Store(nil)
		return nil, fmt.Errorf("biometrics: path feed: %w", err)
	}
	go f.send(runCtx)
	return f, nil
}

// enqueue is the engine's publish: it never blocks a stream.
func (f *PathFeed) enqueue(b PathBatch) {
	select {
	case f.queue <- b:
	default:
		f.dropped.Add(uint64(b.Len()))
	}
}

// send batches queued cells and appends them every FlushEvery, or as soon
// as a batch is full, until ctx ends; what is queued then is flushed.
func (f *PathFeed) send(ctx context.Context) {
	defer close(f.done)
	tick := time.NewTicker(f.cfg.FlushEvery)
	defer tick.Stop()
	// pending, and the encoded and sealed batch, are filled again four
	// times a second: their arrays are kept, not taken anew each time
	// (nats.go copies what it sends).
	var pending []pathEntry
	var plain, sealed []byte
	flush := func(ctx context.Context) {
		for sent := 0; sent < len(pending); {
			n := min(len(pending)-sent, MaxPathBatchCells)
			plain, sealed = f.publish(ctx, pending[sent:sent+n], plain[:0], sealed[:0])
			sent += n
		}
		pending = pending[:0]
	}
	for {
		select {
		case b := <-f.queue:
			pending = append(pending, b.entries...)
			if len(pending) >= MaxPathBatchCells {
				flush(ctx)
			}
		case <-tick.C:
			flush(ctx)
		case <-ctx.Done():
			// The last cells still go out, within the store's timeout.
			for drained := false; !drained; {
				select {
				case b := <-f.queue:
					pending = append(pending, b.entries...)
				default:
					drained = true
				}
			}
			flush(context.WithoutCancel(ctx))
			return
		}
	}
}

func (f *PathFeed) subject(node string) string { return pathSubjectPrefix + node }

// publish encodes entries (at most MaxPathBatchCells) into plain, seals
// them into sealed and appends them to the node's subject; it returns
// both arrays for the next batch.
func (f *PathFeed) publish(ctx context.Context, entries []pathEntry, plain, sealed []byte) ([]byte, []byte) {
	plain = PathBatch{entries: entries}.appendBinary(plain)
	sealed, err := f.seal(sealed, f.subject(f.cfg.Node), plain)
	if err == nil {
		_, err = f.stream.Append(ctx, f.subject(f.cfg.Node), sealed)
	}
	if err != nil {
		f.dropped.Add(uint64(len(entries)))
		f.cfg.Logger.Warn("biometrics: path cells not shared", "cells", len(entries), "err", err)
		return plain, sealed
	}
	f.sent.Add(1)
	f.sentCells.Add(uint64(len(entries)))
	return plain, sealed
}

// seal appends to out the version, a fresh nonce and plain sealed under
// the feed's key with subject as associated data.
func (f *PathFeed) seal(out []byte, subject string, plain []byte) ([]byte, error) {
	aead := f.ring.sealer()
	ns := aead.NonceSize()
	out = slices.Grow(out[:0], 1+ns+len(plain)+aead.Overhead())[:1+ns]
	out[0] = sealedPathVersion
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		return out[:0], fmt.Errorf("biometrics: path feed nonce: %w", err)
	}
	return aead.Seal(out, out[1:], plain, []byte(subject)), nil
}

func (f *PathFeed) open(subject string, sealed []byte) ([]byte, error) {
	ns := f.ring.sealer().NonceSize()
	if len(sealed) < 1+ns+f.ring.sealer().Overhead() || sealed[0] != sealedPathVersion {
		return nil, fmt.Errorf("%w: sealed batch of %d bytes", ErrPathBatch, len(sealed))
	}
	plain, _, err := f.ring.open(sealed[1:1+ns], sealed[1+ns:], []byte(subject))
	if err != nil {
		return nil, fmt.Errorf("%w: does not open under the cluster's key", ErrPathBatch)
	}
	return plain, nil
}

// apply takes a peer's batch in, and one this node sent before it
// restarted: a recording replayed through a node that restarted since it
// first streamed would otherwise meet an empty registry, on the one node
// whose cells the others' feeds do not bring back to it. A message that
// does not open or decode is counted and skipped, never an error: one
// forged message must not stop the feed.
func (f *PathFeed) apply(m store.Msg) error {
	node, ok := strings.CutPrefix(m.Subject, pathSubjectPrefix)
	if !ok || node == f.cfg.Node && m.Seq > f.earlierRun {
		return nil
	}
	plain, err := f.open(m.Subject, m.Data)
	var b PathBatch
	if err == nil {
		err = b.UnmarshalBinary(plain)
	}
	if err != nil || !nodeNameRE.MatchString(node) {
		f.rejected.Add(1)
		f.cfg.Logger.Warn("biometrics: peer path batch refused", "node", node, "seq", m.Seq, "err", err)
		return nil
	}
	f.cfg.Engine.AddPeerPaths(node, b, f.cfg.Clock())
	f.received.Add(1)
	f.receivedCells.Add(uint64(b.Len()))
	return nil
}

// Stats returns the feed's counters; a nil feed (a node with no other
// node to share with) has shared and taken in nothing.
func (f *PathFeed) Stats() PathFeedStats {
	if f == nil {
		return PathFeedStats{}
	}
	return PathFeedStats{
		Sent: f.sent.Load(), SentCells: f.sentCells.Load(), Dropped: f.dropped.Load(),
		Received: f.received.Load(), ReceivedCells: f.receivedCells.Load(), Rejected: f.rejected.Load(),
	}
}

// Close stops following the peers, sends what is queued and stops. The
// engine keeps the peers' cells it has (they age out) and files its own
// cells for nobody. Closing a nil feed does nothing.
func (f *PathFeed) Close() {
	if f == nil {
		return
	}
	f.once.Do(func() {
		f.follow.Stop()
		f.cancel()
		<-f.done
	})
}
