package store

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zerorealm/zerorealm/internal/testlog"
)

// testLogger writes the warnings of what a test runs into its output.
var testLogger = testlog.New

func newTestStore(t testing.TB, nc *nats.Conn, cfg Config) *Store {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := New(context.Background(), nc, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func newTestStream(t testing.TB, s *Store, cfg StreamConfig) *Stream {
	t.Helper()
	st, err := s.Stream(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Stream(%+v): %v", cfg, err)
	}
	return st
}

// subjectCount is how many messages the stream holds on a relative subject.
func subjectCount(t testing.TB, st *Stream, subject string) uint64 {
	t.Helper()
	full := st.store.subject(subject)
	info, err := st.js.Info(context.Background(), jetstream.WithSubjectFilter(full))
	if err != nil {
		t.Fatalf("stream info %s: %v", st.name, err)
	}
	return info.State.Subjects[full]
}
