package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Health is what one Check found. Each field is true when its check
// passed; the checks run in order and stop at the first failure, so a
// false field after a failure means "not checked".
type Health struct {
	// Connected: the NATS connection is up (not reconnecting or closed).
	Connected bool
	// JetStream: JetStream answered an account-info request.
	JetStream bool
	// Leaders: every stream and bucket declared through this Store answered
	// a stream-info request and, on a cluster, has a leader, so it can
	// take writes now.
	Leaders bool
	// Err is the first failure, wrapping ErrUnavailable, for the log. It
	// names streams and buckets, so it is not for clients.
	Err error
}

// OK reports whether every check passed.
func (h Health) OK() bool { return h.Err == nil }

// Check asks, cheaply, whether this store can take writes now: one
// account-info request, then one stream-info request per declared stream
// and bucket, all at once. ctx bounds the whole check; give it a short
// deadline (a second or less), since a stream without a leader answers
// nothing and the check then waits for ctx.
func (s *Store) Check(ctx context.Context) Health {
	var h Health
	if st := s.nc.Status(); st != nats.CONNECTED {
		h.Err = fmt.Errorf("%w: NATS connection %s", ErrUnavailable, st)
		return h
	}
	h.Connected = true
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if _, err := s.js.AccountInfo(ctx); err != nil {
		h.Err = fmt.Errorf("%w: JetStream account info: %w", ErrUnavailable, err)
		return h
	}
	h.JetStream = true
	names := s.declaredStreams()
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { errs[i] = s.checkLeader(ctx, name) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			h.Err = err
			return h
		}
	}
	h.Leaders = true
	return h
}

// checkLeader asks for the stream's info and reports a stream that does
// not answer or, on a cluster, has no leader.
func (s *Store) checkLeader(ctx context.Context, stream string) error {
	reply, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.INFO."+stream, nil)
	if err != nil {
		return fmt.Errorf("%w: stream %s does not answer: %w", ErrUnavailable, stream, err)
	}
	var info struct {
		Error   *jetstream.APIError `json:"error"`
		Cluster *struct {
			Name   string `json:"name"`
			Leader string `json:"leader"`
		} `json:"cluster"`
	}
	if err := json.Unmarshal(reply.Data, &info); err != nil {
		return fmt.Errorf("%w: stream %s: bad info response: %w", ErrUnavailable, stream, err)
	}
	if info.Error != nil {
		return fmt.Errorf("%w: stream %s: %w", ErrUnavailable, stream, info.Error)
	}
	// A server outside a cluster reports no cluster name; inside one, a
	// stream between leaders reports none.
	if info.Cluster != nil && info.Cluster.Name != "" && info.Cluster.Leader == "" {
		return fmt.Errorf("%w: stream %s has no leader", ErrUnavailable, stream)
	}
	return nil
}

// declare remembers a stream (or a bucket's stream) declared through this
// store, for Check.
func (s *Store) declare(stream string) {
	s.declaredMu.Lock()
	defer s.declaredMu.Unlock()
	if !slices.Contains(s.declared, stream) {
		s.declared = append(s.declared, stream)
	}
}

func (s *Store) declaredStreams() []string {
	s.declaredMu.Lock()
	defer s.declaredMu.Unlock()
	return slices.Clone(s.declared)
}
