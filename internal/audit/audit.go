package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

// Outcome is the result of a decision.
type Outcome string

const (
	Allow Outcome = "allow"
	Deny  Outcome = "deny"
)

// Event is one audited decision. The caller fills the decision fields; the
// log fills Node, Index, Prev and, when empty, ID and Time.
type Event struct {
	ID       string         `json:"id"`
	Time     time.Time      `json:"time"`
	Node     string         `json:"node"`
	Index    uint64         `json:"index"`          // position in this node's chain, from 1, gapless
	Prev     string         `json:"prev,omitempty"` // hex SHA-256 of the previous event's stored bytes; empty for the first
	Actor    string         `json:"actor"`          // who asked: an avatar, operator, gateway or the realm itself
	Action   string         `json:"action"`         // what for, e.g. "CommandActuator"
	Resource string         `json:"resource"`       // on what, e.g. `Actuator::"press-1/ram"`
	Outcome  Outcome        `json:"outcome"`
	Reasons  []string       `json:"reasons,omitempty"`  // why; required on deny
	Policies []string       `json:"policies,omitempty"` // ids of the deciding policies
	Signals  map[string]any `json:"signals,omitempty"`  // the inputs that decided: trust score, state, zone, ...
}

// Sentinel errors.
var (
	// ErrClosed is returned by Record and Commit after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrInvalidEvent is returned for an event that would make a useless
	// record: no actor, action or outcome, or a deny without a reason.
	ErrInvalidEvent = errors.New("audit: invalid event")
	// ErrNotStored is returned by Commit when the event's block could not
	// be stored within RetryFor (or was refused); the event was logged and
	// counted as failed.
	ErrNotStored = errors.New("audit: event not stored")
)

// Config configures a Log.
type Config struct {
	// Node names this realm node's chain; required, [A-Za-z0-9_-]{1,64}.
	Node string
	// QueueSize bounds the events waiting to be stored; default 4096.
	QueueSize int
	// BlockEvents bounds the events one block (one append) carries;
	// default 512.
	BlockEvents int
	// RetryFor is how long the writer keeps retrying one block before it
	// logs and counts its events as failed; default 10s.
	RetryFor time.Duration
	// Logger; default discards.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Observe, when set, is told the action and outcome of every event
	// accepted for recording, for the realm's decision metrics. It runs on
	// the caller's goroutine and must not block.
	Observe func(action string, outcome Outcome)

	// Key, when set, makes the chain a transparency log: the log keeps
	// the Merkle tree of the events it stores, signs a checkpoint of it
	// every CheckpointEvery when the chain grew and at Close, publishes
	// it to the AUDITCP stream and keeps the last one in Dir. Its origin
	// must name Node.
	Key *Key
	// PreviousKey, when set, is the node's key before its last rotation:
	// it signs each checkpoint beside Key, so that witnesses and
	// verifiers that pinned it follow the rotation.
	PreviousKey *Key
	// Dir is where the node keeps its last checkpoint outside NATS
	// (checkpoint.json), written atomically; required with Key.
	Dir string
	// CheckpointEvery is how often a grown chain is checkpointed;
	// default 1s.
	CheckpointEvery time.Duration
}

// StreamConfig is the AUDIT stream every node shares.
var StreamConfig = store.StreamConfig{Name: "AUDIT", Subjects: []string{"audit.>"}}

var nodePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidNode reports whether name can name a node's chain.
func ValidNode(name string) bool { return nodePattern.MatchString(name) }

// Subject is the chain subject of a node.
func Subject(node string) string { return "audit." + node }

// maxBlockBytes keeps a block well under NATS's default 1 MiB payload
// limit. An event larger than this still goes out, alone in its block.
const maxBlockBytes = 256 << 10

// Stats are the log's counters, for metrics.
type Stats struct {
	Recorded uint64 // accepted into the queue
	Stored   uint64 // acknowledged by JetStream
	Failed   uint64 // given up after RetryFor; each one was logged
	Retries  uint64 // block appends tried again
	Blocks   uint64 // blocks (appends) stored
	Queued   int

	Checkpoints        uint64 // checkpoints signed
	CheckpointFailures uint64 // checkpoints not kept or not published; each one was logged
	StartFindings      int    // ways the stored chain failed this node's own last checkpoint at start
}

// pending is an event waiting for the writer, with, for Commit, where to
// report whether its block was stored.
type pending struct {
	ev   Event
	done chan error // nil for Record
}

// Log appends events to this node's chain.
type Log struct {
	cfg    Config
	stream *store.Stream
	queue  chan pending

	// closeMu guards closed and sending on queue, so Close never races a
	// Record into a closed channel.
	closeMu sync.RWMutex
	closed  bool
	done    chan struct{}
	// stopping ends when Close gives up waiting for the queue to drain:
	// the writer then fails what it holds instead of retrying it, and the
	// final checkpoint stops waiting for the store, so no goroutine
	// outlives Close.
	stopping context.Context
	giveUp   context.CancelFunc

	recorded, stored, failed, retries, blocks atomic.Uint64

	// Transparency log state, when cfg.Key is set: the tree of what this
	// node stored (fed by the writer), the last checkpoint (guarded by
	// cpMu, which also serialises signing) and what start found wrong.
	tree          *merkleTree
	cpStream      *store.Stream
	cpMu          sync.Mutex
	lastCP        Checkpoint
	startFindings []Finding
	cpDone        chan struct{} // closed when the final checkpoint is made

	checkpoints, cpFailures atomic.Uint64

	// Chain head and block buffer, touched only by the writer goroutine.
	lastSeq   uint64
	lastHash  string
	lastIndex uint64
	buf       []byte
	// headBlock is the block loadHead last read, for adoptHead.
	headBlock []byte
}

// Open creates or reuses the AUDIT stream, reads the head of this node's
// chain and starts the writer.
func Open(ctx context.Context, st *store.Store, cfg Config) (*Log, error) {
	if !nodePattern.MatchString(cfg.Node) {
		return nil, fmt.Errorf("audit: node name %q must match %s", cfg.Node, nodePattern)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.BlockEvents <= 0 {
		cfg.BlockEvents = 512
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	stream, err := st.Stream(ctx, StreamConfig)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{cfg: cfg, stream: stream, queue: make(chan pending, cfg.QueueSize), done: make(chan struct{})}
	l.stopping, l.giveUp = context.WithCancel(context.Background())
	if err := l.loadHead(ctx); err != nil {
		l.giveUp()
		return nil, err
	}
	if cfg.Key != nil {
		if err := l.openTransparency(ctx, st); err != nil {
			l.giveUp()
			return nil, err
		}
	}
	go l.write()
	if cfg.Key != nil {
		l.cpDone = make(chan struct{})
		go l.checkpointLoop()
	}
	return l, nil
}

// loadHead positions the writer after the last stored event of the chain:
// the last line of the chain's last block.
func (l *Log) loadHead(ctx context.Context) error {
	// From the leader: the head must include every event this node stored.
	msg, err := l.stream.GetLast(ctx, Subject(l.cfg.Node), store.FromLeader())
	if errors.Is(err, store.ErrNotFound) {
		l.lastSeq, l.lastHash, l.lastIndex = 0, "", 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: read chain head: %w", err)
	}
	line := msg.Data
	if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		return fmt.Errorf("audit: chain head at seq %d is not an event: %w", msg.Seq, err)
	}
	l.lastSeq, l.lastHash, l.lastIndex = msg.Seq, hashOf(line), ev.Index
	l.headBlock = msg.Data
	return nil
}

// adoptHead takes into the tree the head block loadHead found after a
// conflict, when that block follows directly on what this writer had
// (prevHash, prevIndex): it is this node's own block, stored although
// storeBlock gave up on it after its acks were lost (a leader election,
// a lost quorum) and failed its events. Without it the node's
// checkpoints would leave those events out, and no longer cover the
// chain as stored (found by the chaos suite: witnesses then refuse every
// later checkpoint and verification reports the chain rewritten). Any
// other head was written by another process with this node's name; it is
// logged, and the checkpoints, which cannot cover it, will say so.
func (l *Log) adoptHead(prevHash string, prevIndex uint64) {
	block := l.headBlock
	l.headBlock = nil
	first := block
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	var ev Event
	if json.Unmarshal(first, &ev) == nil && ev.Prev == prevHash && ev.Index == prevIndex+1 {
		l.grow(block)
		l.cfg.Logger.Warn("audit block stored although its append was given up: its events are in the chain", "node", l.cfg.Node, "events", l.lastIndex-prevIndex)
		return
	}
	l.cfg.Logger.Error("audit chain moved by blocks this writer did not lay out: its checkpoints cannot cover them", "node", l.cfg.Node, "head_index", l.lastIndex, "had_index", prevIndex)
}

// Record queues an event and returns without waiting for it to be stored.
// It blocks while the queue is full (back-pressure) and returns ctx's error
// if the context ends first; that event is counted as failed and logged.
func (l *Log) Record(ctx context.Context, ev Event) error {
	return l.enqueue(ctx, ev, nil)
}

// Commit records an event and returns once the block holding it is
// stored, so that a caller can act on a decision only when the decision is
// on record. It returns ErrNotStored if the block could not be stored
// within RetryFor, and ctx's error if ctx ends first (the event then stays
// queued and is still stored).
func (l *Log) Commit(ctx context.Context, ev Event) error {
	done := make(chan error, 1)
	if err := l.enqueue(ctx, ev, done); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("audit: waiting for the event to be stored: %w", ctx.Err())
	}
}

func (l *Log) enqueue(ctx context.Context, ev Event, done chan error) error {
	if ev.Actor == "" || ev.Action == "" || (ev.Outcome != Allow && ev.Outcome != Deny) {
		return fmt.Errorf("%w: actor, action and an outcome of allow or deny are required", ErrInvalidEvent)
	}
	if ev.Outcome == Deny && len(ev.Reasons) == 0 {
		return fmt.Errorf("%w: a deny needs a reason", ErrInvalidEvent)
	}
	if ev.ID == "" {
		ev.ID = newID()
	}
	if ev.Time.IsZero() {
		ev.Time = l.cfg.Now()
	}
	ev.Time = ev.Time.UTC()
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	select {
	case l.queue <- pending{ev: ev, done: done}:
		l.recorded.Add(1)
		if l.cfg.Observe != nil {
			l.cfg.Observe(ev.Action, ev.Outcome)
		}
		return nil
	case <-ctx.Done():
		l.failed.Add(1)
		l.cfg.Logger.Error("audit event not recorded: queue full", "id", ev.ID, "action", ev.Action, "actor", ev.Actor, "outcome", ev.Outcome, "err", ctx.Err())
		return fmt.Errorf("audit: queue full: %w", ctx.Err())
	}
}

// Close stops accepting events, stores what is queued and returns when the
// writer is done or ctx ends.
func (l *Log) Close(ctx context.Context) error {
	l.closeMu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.closeMu.Unlock()
	defer l.giveUp()
	select {
	case <-l.done:
	case <-ctx.Done():
		queued := len(l.queue)
		l.giveUp()
		<-l.done
		if l.cpDone != nil {
			<-l.cpDone
		}
		return fmt.Errorf("audit: close: %d events still queued, failed: %w", queued, ctx.Err())
	}
	if l.cfg.Key != nil {
		select {
		case <-l.cpDone:
		case <-ctx.Done():
			l.giveUp()
			<-l.cpDone
			return fmt.Errorf("audit: close: final checkpoint: %w", ctx.Err())
		}
	}
	return nil
}

// Stats returns the counters.
func (l *Log) Stats() Stats {
	return Stats{
		Recorded: l.recorded.Load(),
		Stored:   l.stored.Load(),
		Failed:   l.failed.Load(),
		Retries:  l.retries.Load(),
		Blocks:   l.blocks.Load(),
		Queued:   len(l.queue),

		Checkpoints:        l.checkpoints.Load(),
		CheckpointFailures: l.cpFailures.Load(),
		StartFindings:      len(l.startFindings),
	}
}

// Node is this log's chain name.
func (l *Log) Node() string { return l.cfg.Node }

// write is the group commit: it takes whatever is queued (at least one
// event, at most BlockEvents) as one block and appends it, so that events
// arriving while an append is in flight go out together in the next one.
// One writer per chain keeps the chain's order without a lock.
func (l *Log) write() {
	defer close(l.done)
	block := make([]pending, 0, l.cfg.BlockEvents)
	for {
		p, ok := <-l.queue
		if !ok {
			return
		}
		block = append(block[:0], p)
	drain:
		for len(block) < l.cfg.BlockEvents {
			select {
			case p, ok := <-l.queue:
				if !ok {
					break drain
				}
				block = append(block, p)
			default:
				break drain
			}
		}
		for done := 0; done < len(block); {
			done += l.storeBlock(block[done:])
		}
		clear(block) // let the stored events go
	}
}

// encode lays out events from the start of block as one block after the
// current head: each event, with its node, index and the hash of the event
// before it, on a line of its own. It stops before maxBlockBytes (an event
// that alone exceeds it goes alone). It returns the block's bytes, how many
// events it holds, and the hash and index of its last event.
func (l *Log) encode(block []pending) (data []byte, n int, lastHash string, lastIndex uint64, err error) {
	buf := l.buf[:0]
	prev, index := l.lastHash, l.lastIndex
	for i := range block {
		ev := &block[i].ev
		ev.Node, ev.Index, ev.Prev = l.cfg.Node, index+1, prev
		line, err := MarshalEvent(ev)
		if err != nil {
			if i == 0 {
				return nil, 1, "", 0, err
			}
			break // encoded on its own next, and refused there
		}
		if i > 0 && len(buf)+1+len(line) > maxBlockBytes {
			break
		}
		if i > 0 {
			buf = append(buf, '\n')
		}
		buf = append(buf, line...)
		prev, index, n = hashOf(line), index+1, i+1
	}
	l.buf = buf
	return buf, n, prev, index, nil
}

// storeBlock appends the events at the start of block as one block,
// retrying transient failures, and reports to their Commit callers. It
// returns how many events it handled, stored or failed. A conflict means
// another process appended to this node's chain (two processes with one
// node name): the head is re-read and the block laid out again after it, so
// the chain stays intact, and it is logged loudly because it breaks the
// one-writer-per-chain assumption.
func (l *Log) storeBlock(block []pending) int {
	deadline := time.Now().Add(l.cfg.RetryFor)
	backoff := 20 * time.Millisecond
	for {
		data, n, lastHash, lastIndex, err := l.encode(block)
		if err != nil {
			l.fail(block[:n], "cannot encode", err)
			return n
		}
		// One id per layout: a retry of the same bytes after a lost ack is
		// recognised as stored; a new layout is a new message.
		id := newID()
		for {
			ctx, cancel := context.WithDeadline(l.stopping, attemptDeadline(deadline))
			seq, err := l.stream.AppendIfLast(ctx, Subject(l.cfg.Node), data, l.lastSeq, store.WithMsgID(id))
			cancel()
			if err == nil {
				l.grow(data)
				l.lastSeq, l.lastHash, l.lastIndex = seq, lastHash, lastIndex
				l.stored.Add(uint64(n))
				l.blocks.Add(1)
				for _, p := range block[:n] {
					if p.done != nil {
						p.done <- nil
					}
				}
				return n
			}
			if errors.Is(err, store.ErrInvalid) {
				// Refused as it is (too large): retrying cannot help.
				l.fail(block[:n], "refused by the store", err)
				return n
			}
			relayout := false
			if errors.Is(err, store.ErrConflict) {
				l.cfg.Logger.Warn("audit chain moved under this node: another process uses the same node name", "node", l.cfg.Node, "err", err)
				rctx, rcancel := context.WithDeadline(l.stopping, attemptDeadline(deadline))
				prevHash, prevIndex := l.lastHash, l.lastIndex
				herr := l.loadHead(rctx)
				rcancel()
				if herr == nil {
					l.adoptHead(prevHash, prevIndex)
				}
				if herr != nil {
					err = herr
				} else {
					relayout = true
				}
			}
			if time.Now().After(deadline) {
				l.fail(block[:n], "store unavailable", err)
				return n
			}
			if l.stopping.Err() != nil {
				l.fail(block[:n], "the log closed before the store took it", err)
				return n
			}
			l.retries.Add(1)
			select {
			case <-l.stopping.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			if relayout {
				break
			}
		}
	}
}

// fail logs and counts events that will not be stored, and tells their
// Commit callers.
func (l *Log) fail(events []pending, why string, err error) {
	for _, p := range events {
		l.failed.Add(1)
		ev := &p.ev
		l.cfg.Logger.Error("audit event not recorded: "+why, "id", ev.ID, "action", ev.Action, "actor", ev.Actor, "outcome", ev.Outcome, "err", err)
		if p.done != nil {
			p.done <- fmt.Errorf("%w: %s: %w", ErrNotStored, why, err)
		}
	}
}

// attemptDeadline bounds one try to 5s and never past the block's overall
// retry deadline.
func attemptDeadline(overall time.Time) time.Time {
	if d := time.Now().Add(5 * time.Second); d.Before(overall) {
		return d
	}
	return overall
}

func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
