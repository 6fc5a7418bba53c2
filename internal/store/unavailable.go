package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrUnavailable reports that JetStream could not answer now: the
// connection is down or reconnecting, nothing answered the request (no
// responders, a stream without a leader), the server said it is
// temporarily unavailable (API errors with HTTP code 503, such as 10008
// during quorum loss; 10118 "stream is offline"; 10158, an earlier
// attempt of the same idempotent write still in flight; 10176, an atomic
// batch that lost a message on the way), or the call ran out of time. It says nothing about the data: a read that failed with it may
// be retried, and a write that failed with it may or may not have been
// stored. Every Store, Stream, Bucket and Follower method wraps it, so
// callers test errors.Is(err, store.ErrUnavailable) without knowing NATS.
var ErrUnavailable = errors.New("store: unavailable")

// classify wraps err with ErrUnavailable when it is one of the transient
// failures above, and returns it unchanged otherwise. Conflicts and
// not-found answers are decided before it is called, so they never read as
// unavailability. A cancelled context is the caller giving up, not the
// store failing, and is left alone.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !unavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// unavailable reports whether err is a transient failure to reach or hear
// from JetStream.
func unavailable(err error) bool {
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, jetstream.ErrNoHeartbeat),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrNoServers),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		if isConflictCode(apiErr) {
			return false
		}
		switch apiErr.ErrorCode {
		case jsErrCodeStreamOffline, jsErrCodeDuplicateInProcess, jsErrCodeBatchIncomplete:
			return true
		}
		return apiErr.Code == http.StatusServiceUnavailable
	}
	return false
}

// jsErrCodeStreamOffline is the server's 10118 "stream is offline": a
// replicated stream whose assets are not running on the answering server,
// typically while the cluster recovers. The client library has no constant
// for it.
const jsErrCodeStreamOffline jetstream.ErrorCode = 10118

// jsErrCodeDuplicateInProcess is the server's 10158 "duplicate message id
// is in process": a retry met its own earlier attempt still proposed but
// not committed, which on a stream without quorum stays so. Its outcome is
// unknown until the stream has a leader again.
const jsErrCodeDuplicateInProcess jetstream.ErrorCode = 10158

// jsErrCodeBatchIncomplete is the server's 10176 "atomic publish batch is
// incomplete": a message of an atomic batch did not reach the stream (the
// batch's messages but the first go unacknowledged), as when the server
// is stopping or its store fails a write. The server abandons the batch,
// so nothing of it is stored, and the same batch may be sent again. The
// server calls it a 400; to the caller it is the store not answering.
const jsErrCodeBatchIncomplete jetstream.ErrorCode = 10176

// jsErrCodeNoSuitablePeers is the server's 10005: the meta leader knows too
// few servers to place the replicas, which right after a cluster elects
// its meta leader only means the others have not reported yet.
const jsErrCodeNoSuitablePeers jetstream.ErrorCode = 10005

// Back-off of retryDeclare.
const (
	declareRetryFirst = 50 * time.Millisecond
	declareRetryMax   = time.Second
)

// retryDeclare runs declare (a stream or bucket declaration, which is
// idempotent) until it succeeds, fails for a reason a retry cannot cure,
// or ctx ends. It rides out a cluster that has just elected its meta
// leader: no responders, JetStream 10008, or too few peers known yet.
func (s *Store) retryDeclare(ctx context.Context, what string, declare func() error) error {
	backoff := declareRetryFirst
	for attempt := 1; ; attempt++ {
		err := declare()
		var apiErr *jetstream.APIError
		settling := errors.Is(err, ErrUnavailable) ||
			errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeNoSuitablePeers
		if err == nil || !settling {
			return err
		}
		deadline, ok := ctx.Deadline()
		if ctx.Err() != nil || ok && time.Until(deadline) < backoff {
			return err
		}
		s.log.Warn("declaration refused while the cluster settles, retrying", "what", what, "attempt", attempt, "retry_in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, declareRetryMax)
	}
}
