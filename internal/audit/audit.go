package audit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	// ErrClosed is returned by Record after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrInvalidEvent is returned for an event that would make a useless
	// record: no actor, action or outcome, or a deny without a reason.
	ErrInvalidEvent = errors.New("audit: invalid event")
)

// Config configures a Log.
type Config struct {
	// Node names this realm node's chain; required, [A-Za-z0-9_-]{1,64}.
	Node string
	// QueueSize bounds the events waiting to be stored; default 4096.
	QueueSize int
	// RetryFor is how long the writer keeps retrying one event before it
	// logs and counts it as failed; default 10s.
	RetryFor time.Duration
	// Logger; default discards.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// StreamConfig is the AUDIT stream every node shares.
var StreamConfig = store.StreamConfig{Name: "AUDIT", Subjects: []string{"audit.>"}}

var nodePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Subject is the chain subject of a node.
func Subject(node string) string { return "audit." + node }

// Stats are the log's counters, for metrics.
type Stats struct {
	Recorded uint64 // accepted into the queue
	Stored   uint64 // acknowledged by JetStream
	Failed   uint64 // given up after RetryFor; each one was logged
	Retries  uint64
	Queued   int
}

// Log appends events to this node's chain.
type Log struct {
	cfg    Config
	stream *store.Stream
	queue  chan Event

	// closeMu guards closed and sending on queue, so Close never races a
	// Record into a closed channel.
	closeMu sync.RWMutex
	closed  bool
	done    chan struct{}

	recorded, stored, failed, retries atomic.Uint64

	// Chain head, touched only by the writer goroutine.
	lastSeq   uint64
	lastHash  string
	lastIndex uint64
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
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	stream, err := st.Stream(ctx, StreamConfig)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{cfg: cfg, stream: stream, queue: make(chan Event, cfg.QueueSize), done: make(chan struct{})}
	if err := l.loadHead(ctx); err != nil {
		return nil, err
	}
	go l.write()
	return l, nil
}

// loadHead positions the writer after the last stored event of the chain.
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
	var ev Event
	if err := json.Unmarshal(msg.Data, &ev); err != nil {
		return fmt.Errorf("audit: chain head at seq %d is not an event: %w", msg.Seq, err)
	}
	l.lastSeq, l.lastHash, l.lastIndex = msg.Seq, hashOf(msg.Data), ev.Index
	return nil
}

// Record queues an event. It blocks while the queue is full (back-pressure)
// and returns ctx's error if the context ends first; that event is counted
// as failed and logged.
func (l *Log) Record(ctx context.Context, ev Event) error {
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
	case l.queue <- ev:
		l.recorded.Add(1)
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
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: close: %d events still queued: %w", len(l.queue), ctx.Err())
	}
}

// Stats returns the counters.
func (l *Log) Stats() Stats {
	return Stats{
		Recorded: l.recorded.Load(),
		Stored:   l.stored.Load(),
		Failed:   l.failed.Load(),
		Retries:  l.retries.Load(),
		Queued:   len(l.queue),
	}
}

// Node is this log's chain name.
func (l *Log) Node() string { return l.cfg.Node }

func (l *Log) write() {
	defer close(l.done)
	for ev := range l.queue {
		l.store(ev)
	}
}

// store appends one event, retrying transient failures. A conflict means
// another process appended to this node's chain (two processes with one node
// name): the head is re-read so the chain stays intact, and it is logged
// loudly because it breaks the one-writer-per-chain assumption.
func (l *Log) store(ev Event) {
	deadline := time.Now().Add(l.cfg.RetryFor)
	backoff := 20 * time.Millisecond
	for {
		ev.Node = l.cfg.Node
		ev.Index = l.lastIndex + 1
		ev.Prev = l.lastHash
		data, err := json.Marshal(ev)
		if err != nil {
			l.failed.Add(1)
			l.cfg.Logger.Error("audit event not recorded: cannot encode", "id", ev.ID, "action", ev.Action, "err", err)
			return
		}
		ctx, cancel := context.WithDeadline(context.Background(), attemptDeadline(deadline))
		seq, err := l.stream.AppendIfLast(ctx, Subject(l.cfg.Node), data, l.lastSeq, store.WithMsgID(ev.ID))
		cancel()
		if err == nil {
			l.lastSeq, l.lastHash, l.lastIndex = seq, hashOf(data), ev.Index
			l.stored.Add(1)
			return
		}
		if errors.Is(err, store.ErrConflict) {
			l.cfg.Logger.Warn("audit chain moved under this node: another process uses the same node name", "node", l.cfg.Node, "err", err)
			rctx, rcancel := context.WithDeadline(context.Background(), attemptDeadline(deadline))
			herr := l.loadHead(rctx)
			rcancel()
			if herr != nil {
				err = herr
			}
		}
		if time.Now().After(deadline) {
			l.failed.Add(1)
			l.cfg.Logger.Error("audit event not recorded: store unavailable", "id", ev.ID, "action", ev.Action, "actor", ev.Actor, "outcome", ev.Outcome, "err", err)
			return
		}
		l.retries.Add(1)
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
	}
}

// attemptDeadline bounds one try to 5s and never past the event's overall
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
