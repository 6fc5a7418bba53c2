package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Follower feeds a projection from a stream; see Stream.Follow.
type Follower struct {
	stream *Stream
	filter string

	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{} // closed when delivery has stopped

	mu      sync.Mutex
	applied uint64
	drained bool // the server reported nothing pending after the last applied message
	err     error
	advance chan struct{} // closed and replaced whenever applied moves or the follower stops

	// lastOn is, on a sealed stream, the sequence of the last genuine
	// message delivered on each subject: a message must follow the one
	// its seal names, so a genuine message appended again (a replay) is
	// refused. Only the delivery goroutine uses it.
	lastOn map[string]uint64
}

// Follow delivers every message matching the relative filter (e.g.
// "ledger.>") to apply, in stream order: first the whole history, then new
// messages as they are stored. It returns once everything that existed when
// it was called has been applied, so a read model is complete when Follow
// returns, and keeps delivering in the background until ctx ends or Stop is
// called.
//
// apply runs on one goroutine at a time. If it returns an error the follower
// stops, logs it and reports it from Err; during the initial replay Follow
// returns it. The underlying ordered consumer recreates itself after
// reconnects and leader changes, resuming after the last applied message.
//
// The initial replay fails if no message arrives for the store's Timeout
// while some are still due, so a stuck server cannot hang start-up.
func (st *Stream) Follow(ctx context.Context, filter string, apply func(Msg) error) (*Follower, error) {
	if err := validateFilter(filter); err != nil {
		return nil, err
	}
	if apply == nil {
		return nil, fmt.Errorf("%w: nil apply function", ErrInvalid)
	}
	full := st.store.subject(filter)

	target, err := st.lastMatching(ctx, full)
	if err != nil {
		return nil, err
	}

	f := &Follower{
		stream:  st,
		filter:  filter,
		stopCh:  make(chan struct{}),
		done:    make(chan struct{}),
		advance: make(chan struct{}),
	}
	if st.seal != nil {
		f.lastOn = map[string]uint64{}
	}
	createCtx, cancel := st.store.withTimeout(ctx)
	cons, err := st.store.js.OrderedConsumer(createCtx, st.name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{full},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("store: follow %s on %s: %w", filter, st.name, classify(err))
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { f.deliver(m, apply) }, jetstream.PullHeartbeat(followHeartbeat))
	if err != nil {
		return nil, fmt.Errorf("store: follow %s on %s: %w", filter, st.name, classify(err))
	}
	go func() {
		select {
		case <-ctx.Done():
			f.fail(fmt.Errorf("%w: %w", ErrStopped, ctx.Err()))
		case <-f.stopCh:
		}
		cc.Stop()
		<-cc.Closed()
		close(f.done)
	}()

	if err := f.waitCaughtUp(ctx, target); err != nil {
		f.Stop()
		return nil, err
	}
	return f, nil
}

// followHeartbeat is how often the server tells a follower it is still
// there while no message comes. The client re-creates an ordered consumer
// after two missed heartbeats, so this bounds how long a follower stays
// behind a consumer that is gone: one lost with a stream's leader, or with
// an embedded JetStream restarted after a full disk. The client's default
// (5 s) made that 10 s, during which every write that waits for its read
// model timed out. A heartbeat a second per follower costs the server
// next to nothing.
const followHeartbeat = time.Second

// lastMatching returns the sequence of the newest message matching the
// absolute filter, 0 if there is none. It asks the stream API rather than a
// direct get because direct gets take the subject in the request subject,
// where wildcards are not allowed.
func (st *Stream) lastMatching(ctx context.Context, filter string) (uint64, error) {
	ctx, cancel := st.store.withTimeout(ctx)
	defer cancel()
	req, err := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{filter})
	if err != nil {
		return 0, err
	}
	reply, err := st.store.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+st.name, req)
	if err != nil {
		return 0, fmt.Errorf("store: last message matching %s in %s: %w", filter, st.name, classify(err))
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Seq uint64 `json:"seq"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return 0, fmt.Errorf("store: last message matching %s in %s: %w", filter, st.name, classify(err))
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return 0, nil
	case resp.Error != nil:
		return 0, fmt.Errorf("store: last message matching %s in %s: %w", filter, st.name, classify(resp.Error))
	case resp.Message == nil:
		return 0, fmt.Errorf("store: last message matching %s in %s: empty response", filter, st.name)
	}
	return resp.Message.Seq, nil
}

func (f *Follower) deliver(m jetstream.Msg, apply func(Msg) error) {
	meta, err := m.Metadata()
	if err != nil {
		f.fail(fmt.Errorf("store: follow %s on %s: %w", f.filter, f.stream.name, classify(err)))
		return
	}
	f.mu.Lock()
	stopped := f.err != nil
	f.mu.Unlock()
	if stopped {
		return
	}
	msg := Msg{
		Subject: f.stream.store.relative(m.Subject()),
		Seq:     meta.Sequence.Stream,
		Data:    m.Data(),
		Header:  m.Headers(),
		Time:    meta.Timestamp,
	}
	// A forged or altered message is skipped (verify reported it): the
	// projection never sees it, and one bad message must not stop the node.
	if f.genuine(msg) {
		if err := apply(msg); err != nil {
			f.stream.store.log.Error("projection apply failed; follower stopped",
				"stream", f.stream.name, "filter", f.filter, "seq", msg.Seq, "subject", msg.Subject, "err", err)
			f.fail(fmt.Errorf("store: apply %s seq %d: %w", msg.Subject, msg.Seq, classify(err)))
			return
		}
	}
	f.mu.Lock()
	f.applied = msg.Seq
	f.drained = meta.NumPending == 0
	close(f.advance)
	f.advance = make(chan struct{})
	f.mu.Unlock()
}

// genuine verifies msg's seal on a sealed stream and that it follows the
// message its seal names on its subject; it reports what does not.
func (f *Follower) genuine(msg Msg) bool {
	last, err := f.stream.verify(msg)
	if err != nil || f.lastOn == nil {
		return err == nil
	}
	prev, seen := f.lastOn[msg.Subject]
	if last != noPredecessor {
		claimed, _ := strconv.ParseUint(last, 10, 64) // verify checked its form
		// A subject not seen yet must start at 0, unless limits may
		// have dropped its start.
		if (seen && claimed != prev) || (!seen && claimed != 0 && !f.stream.trimmed) {
			_ = f.stream.tampered(msg, ReasonReplayed)
			return false
		}
	}
	f.lastOn[msg.Subject] = msg.Seq
	return true
}

// fail records the first error, wakes waiters and stops delivery.
func (f *Follower) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
		close(f.advance)
		f.advance = make(chan struct{})
	}
	f.mu.Unlock()
	f.stopOnce.Do(func() { close(f.stopCh) })
}

func (f *Follower) waitCaughtUp(ctx context.Context, target uint64) error {
	stall := time.NewTimer(f.stream.store.timeout)
	defer stall.Stop()
	for {
		f.mu.Lock()
		applied, drained, err, advance := f.applied, f.drained, f.err, f.advance
		f.mu.Unlock()
		if err != nil {
			return err
		}
		// drained covers a target that expired (MaxAge) before delivery.
		if applied >= target || drained {
			return nil
		}
		select {
		case <-advance:
			stall.Reset(f.stream.store.timeout)
		case <-stall.C:
			return fmt.Errorf("store: follow %s on %s: no progress for %v at sequence %d of %d",
				f.filter, f.stream.name, f.stream.store.timeout, applied, target)
		case <-ctx.Done():
			return fmt.Errorf("store: follow %s on %s: %w", f.filter, f.stream.name, classify(ctx.Err()))
		}
	}
}

// Stop ends delivery and waits until apply is no longer running.
func (f *Follower) Stop() {
	f.stopOnce.Do(func() {
		f.mu.Lock()
		if f.err == nil {
			f.err = ErrStopped
			close(f.advance)
			f.advance = make(chan struct{})
		}
		f.mu.Unlock()
		close(f.stopCh)
	})
	<-f.done
}

// Err reports why the follower stopped: the apply error, ErrStopped after
// Stop or when its context ended, or nil while it runs.
func (f *Follower) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Applied is the stream sequence of the last message applied.
func (f *Follower) Applied() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// WaitApplied waits until the message with stream sequence seq (typically
// returned by an append to a subject the filter matches) has been applied,
// so a caller can read its own write from the projection. It fails with the
// follower's error if it stops first.
func (f *Follower) WaitApplied(ctx context.Context, seq uint64) error {
	// A write already applied is answered without a timer.
	f.mu.Lock()
	applied, err := f.applied, f.err
	f.mu.Unlock()
	if applied >= seq {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: wait for sequence %d: %w", seq, classify(err))
	}
	ctx, cancel := f.stream.store.withTimeout(ctx)
	defer cancel()
	for {
		f.mu.Lock()
		applied, err, advance := f.applied, f.err, f.advance
		f.mu.Unlock()
		if applied >= seq {
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: wait for sequence %d: %w", seq, classify(err))
		}
		select {
		case <-advance:
		case <-ctx.Done():
			return fmt.Errorf("store: wait for sequence %d (applied %d): %w", seq, applied, classify(ctx.Err()))
		}
	}
}
