package store

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testLogWriter sends log lines to t.Log so they show only for failing tests.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

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
