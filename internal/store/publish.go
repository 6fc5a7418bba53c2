package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The store publishes with a plain request carrying JetStream's headers
// rather than through jetstream.PublishMsg: that client decodes every
// acknowledgement with encoding/json, builds its headers from options and
// wants a context per attempt, which, with a handful of appends behind
// each asset transfer, cost more than the rest of the store's work. The wire exchange is the same; see
// publish and parseAck.

// No responders right after a leader change: retried like the jetstream
// client does, with its defaults.
const (
	noResponderRetries = 2
	noResponderWait    = 250 * time.Millisecond
	// freshBucketRetries bounds how long (times noResponderWait) a read
	// waits for a new bucket's replicas to answer.
	freshBucketRetries = 8
)

// publishHeader is what an append sends: the caller's headers (WithHeader)
// and the expectations the stream checks.
func publishHeader(extra nats.Header, stream, expectLast, msgID, seal string) nats.Header {
	h := make(nats.Header, len(extra)+4)
	for k, v := range extra {
		h[k] = slices.Clone(v)
	}
	h.Set(jetstream.ExpectedStreamHeader, stream)
	if expectLast != "" {
		h.Set(jetstream.ExpectedLastSubjSeqHeader, expectLast)
	}
	if msgID != "" {
		h.Set(jetstream.MsgIDHeader, msgID)
	}
	if seal != "" {
		h.Set(SealHeader, seal)
	}
	return h
}

// publish sends msg to the stream and returns the sequence it was stored
// at. Errors are the jetstream client's: a refusal is a
// *jetstream.APIError (wrapped), so isConflictCode and subjectBusy see it.
//
// The request waits until deadline with the connection's pooled timer,
// not a context per attempt (a timer and a cancel registration each). A
// cancelled ctx stops a publish before it is sent and between retries,
// but not one in flight: its answer comes within the deadline anyway, and
// abandoning it would turn an outcome into an unknown one.
func (st *Stream) publish(ctx context.Context, deadline time.Time, msg *nats.Msg) (uint64, error) {
	request := func() (*nats.Msg, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil, context.DeadlineExceeded
		}
		return st.store.nc.RequestMsg(msg, wait)
	}
	resp, err := request()
	for r := 0; errors.Is(err, nats.ErrNoResponders) && r < noResponderRetries; r++ {
		t := time.NewTimer(min(noResponderWait, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, jetstream.ErrNoStreamResponse
		case <-t.C:
		}
		resp, err = request()
	}
	if errors.Is(err, nats.ErrNoResponders) {
		return 0, jetstream.ErrNoStreamResponse
	}
	if err != nil {
		return 0, err
	}
	return st.parseAck(resp.Data)
}

// parseAck reads a publish acknowledgement. The server writes a success
// as {"stream":"NAME","seq":N followed by ',' or '}'; that exact shape
// is read directly, anything else (an error, another field order) goes
// through encoding/json.
func (st *Stream) parseAck(data []byte) (uint64, error) {
	if rest, ok := bytes.CutPrefix(data, st.ackPrefix); ok {
		var seq uint64
		i := 0
		for ; i < len(rest) && i < 19 && rest[i] >= '0' && rest[i] <= '9'; i++ {
			seq = seq*10 + uint64(rest[i]-'0')
		}
		if i > 0 && i < len(rest) && (rest[i] == ',' || rest[i] == '}') && seq > 0 {
			return seq, nil
		}
	}
	var ack struct {
		Error    *jetstream.APIError `json:"error"`
		Stream   string              `json:"stream"`
		Sequence uint64              `json:"seq"`
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		return 0, jetstream.ErrInvalidJSAck
	}
	if ack.Error != nil {
		return 0, fmt.Errorf("nats: %w", ack.Error)
	}
	if ack.Stream != st.name {
		return 0, fmt.Errorf("%w: stored in stream %q, want %s", jetstream.ErrInvalidJSAck, ack.Stream, st.name)
	}
	return ack.Sequence, nil
}
