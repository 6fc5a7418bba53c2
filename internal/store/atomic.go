package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// AtomicMsg is one message of an atomic batch.
type AtomicMsg struct {
	Subject string      // relative
	Data    []byte      //
	LastSeq uint64      // expected last sequence on Subject (0: must have no message)
	Header  nats.Header // optional; "Nats-" headers are the server's and refused
}

// AppendAtomic appends all msgs or none, each only if its subject's last
// sequence is the expected one, and returns their sequences in order. The
// stream must have been declared with AllowAtomic. A stale expectation is
// ErrConflict and changes no subject.
func (st *Stream) AppendAtomic(ctx context.Context, msgs []AtomicMsg) ([]uint64, error) {
	if len(msgs) == 0 || len(msgs) > maxAtomicBatch {
		return nil, fmt.Errorf("%w: atomic batch of %d messages, want 1..%d", ErrInvalid, len(msgs), maxAtomicBatch)
	}
	for i, m := range msgs {
		if err := st.checkPublishSubject(m.Subject); err != nil {
			return nil, fmt.Errorf("atomic message %d: %w", i, err)
		}
		for k := range m.Header {
			if strings.HasPrefix(strings.ToLower(k), "nats-") {
				return nil, fmt.Errorf("%w: atomic message %d: header %q is reserved for the server", ErrInvalid, i, k)
			}
			if strings.EqualFold(k, SealHeader) {
				return nil, fmt.Errorf("%w: atomic message %d: header %q is the store's own", ErrInvalid, i, k)
			}
		}
	}
	if limit := st.store.nc.MaxPayload(); limit > 0 {
		for i, m := range msgs {
			if int64(len(m.Data)) > limit {
				return nil, fmt.Errorf("%w: atomic message %d: %d bytes exceed the server's max payload %d", ErrInvalid, i, len(m.Data), limit)
			}
		}
	}
	what := fmt.Sprintf("store: atomic append of %d messages to %s", len(msgs), st.name)
	if err := st.store.admitWrite(func() string { return what }); err != nil {
		return nil, err
	}
	ctx, cancel := st.store.withTimeout(ctx)
	defer cancel()

	// The publisher waits for the first message's ack for its own
	// timeout, the client's default (5 s), whatever ctx says: bound it by
	// what is left of ctx, so an atomic append never outlives its
	// caller's deadline (a stream between leaders acks nothing).
	deadline, _ := ctx.Deadline()
	batch, err := jetstreamext.NewBatchPublisher(st.store.js,
		jetstreamext.BatchFlowControl{AckFirst: true, AckTimeout: max(time.Until(deadline), time.Millisecond)})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, classify(err))
	}
	last := len(msgs) - 1
	for i, m := range msgs[:last] {
		if err := batch.AddMsg(st.natsMsg(m), jetstreamext.WithBatchExpectLastSequencePerSubject(m.LastSeq)); err != nil {
			// The server abandons an uncommitted batch, so nothing of it
			// is stored; Discard only stops us from adding more.
			_ = batch.Discard()
			if isConflictCode(err) {
				return nil, conflict(fmt.Sprintf("%s (message %d on %s expecting %d)", what, i, m.Subject, m.LastSeq), err)
			}
			return nil, fmt.Errorf("%s: message %d: %w", what, i, classify(err))
		}
	}
	m := msgs[last]
	ack, err := batch.CommitMsg(ctx, st.natsMsg(m),
		jetstreamext.WithBatchExpectLastSequencePerSubject(m.LastSeq),
		jetstreamext.WithBatchExpectStream(st.name))
	if err != nil {
		if isConflictCode(err) {
			return nil, conflict(what, err)
		}
		return nil, fmt.Errorf("%s: %w", what, classify(err))
	}
	// An atomic batch is stored as one contiguous run ending at the
	// commit's sequence.
	if ack.BatchSize != uint64(len(msgs)) || ack.Sequence < uint64(len(msgs)) {
		return nil, fmt.Errorf("%s: unexpected ack (sequence %d, batch size %d)", what, ack.Sequence, ack.BatchSize)
	}
	seqs := make([]uint64, len(msgs))
	first := ack.Sequence - uint64(len(msgs)) + 1
	for i := range seqs {
		seqs[i] = first + uint64(i)
	}
	return seqs, nil
}

func (st *Stream) natsMsg(m AtomicMsg) *nats.Msg {
	h := cloneHeader(m.Header)
	if st.seal != nil {
		if h == nil {
			h = nats.Header{}
		}
		h.Set(SealHeader, st.seal.sealMsg(st.rel, m.Subject, "", strconv.FormatUint(m.LastSeq, 10), m.Data))
	}
	return &nats.Msg{Subject: st.store.subject(m.Subject), Data: m.Data, Header: h}
}
