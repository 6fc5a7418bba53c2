package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

// projection records what a follower applied.
type projection struct {
	mu   sync.Mutex
	msgs []Msg
}

func (p *projection) apply(m Msg) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, m)
	return nil
}

func (p *projection) snapshot() []Msg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Msg(nil), p.msgs...)
}

func TestFollow(t *testing.T) {
	srv := natstest.RunServer(t)
	s := newTestStore(t, natstest.Connect(t, srv.ClientURL()), Config{})
	st := newTestStream(t, s, StreamConfig{Name: "LEDGER", Subjects: []string{"ledger.>", "other.>"}})
	ctx := context.Background()

	var want []uint64
	for i := range 20 {
		subj := fmt.Sprintf("ledger.asset%d", i%3)
		seq, err := st.Append(ctx, subj, fmt.Appendf(nil, "m%d", i))
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		want = append(want, seq)
		if _, err := st.Append(ctx, "other.x", nil); err != nil {
			t.Fatalf("Append(other.x): %v", err)
		}
	}

	var p projection
	f, err := st.Follow(ctx, "ledger.>", p.apply)
	if err != nil {
		t.Fatalf("Follow: %v", err)
	}
	defer f.Stop()
	checkApplied := func(want []uint64) {
		t.Helper()
		got := p.snapshot()
		if len(got) != len(want) {
			t.Fatalf("applied %d messages, want %d", len(got), len(want))
		}
		for i, m := range got {
			if m.Seq != want[i] || m.Subject != fmt.Sprintf("ledger.asset%d", i%3) || string(m.Data) != fmt.Sprintf("m%d", i) {
				t.Errorf("applied[%d] = %d %s %q, want %d ledger.asset%d \"m%d\"", i, m.Seq, m.Subject, m.Data, want[i], i%3, i)
			}
		}
	}
	// Complete on return, with no waiting.
	checkApplied(want)
	if got := f.Applied(); got != want[len(want)-1] {
		t.Errorf("Applied() = %d, want %d", got, want[len(want)-1])
	}

	for i := 20; i < 30; i++ {
		seq, err := st.AppendIfLast(ctx, fmt.Sprintf("ledger.asset%d", i%3), fmt.Appendf(nil, "m%d", i), want[i-3])
		if err != nil {
			t.Fatalf("AppendIfLast: %v", err)
		}
		want = append(want, seq)
		if err := f.WaitApplied(ctx, seq); err != nil {
			t.Fatalf("WaitApplied(%d): %v", seq, err)
		}
		if got := f.Applied(); got < seq {
			t.Fatalf("Applied() = %d after WaitApplied(%d)", got, seq)
		}
	}
	checkApplied(want)
	if err := f.Err(); err != nil {
		t.Errorf("Err() while running = %v, want nil", err)
	}

	f.Stop()
	if err := f.Err(); !errors.Is(err, ErrStopped) {
		t.Errorf("Err() after Stop = %v, want ErrStopped", err)
	}
	if err := f.WaitApplied(ctx, f.Applied()+1); !errors.Is(err, ErrStopped) {
		t.Errorf("WaitApplied after Stop = %v, want ErrStopped", err)
	}
}

func TestFollowEmptyAndCancel(t *testing.T) {
	srv := natstest.RunServer(t)
	s := newTestStore(t, natstest.Connect(t, srv.ClientURL()), Config{})
	st := newTestStream(t, s, StreamConfig{Name: "EMPTY", Subjects: []string{"empty.>"}})
	ctx, cancel := context.WithCancel(context.Background())

	var p projection
	f, err := st.Follow(ctx, "empty.>", p.apply)
	if err != nil {
		t.Fatalf("Follow on an empty stream: %v", err)
	}
	if got := f.Applied(); got != 0 {
		t.Errorf("Applied() = %d, want 0", got)
	}
	seq, err := st.Append(context.Background(), "empty.a", []byte("first"))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := f.WaitApplied(context.Background(), seq); err != nil {
		t.Fatalf("WaitApplied(%d): %v", seq, err)
	}
	cancel()
	if err := f.WaitApplied(context.Background(), seq+1); !errors.Is(err, ErrStopped) {
		t.Errorf("WaitApplied after the context ended = %v, want ErrStopped", err)
	}
	f.Stop()
}

func TestFollowApplyError(t *testing.T) {
	srv := natstest.RunServer(t)
	s := newTestStore(t, natstest.Connect(t, srv.ClientURL()), Config{})
	st := newTestStream(t, s, StreamConfig{Name: "BAD", Subjects: []string{"bad.>"}})
	ctx := context.Background()
	errBad := errors.New("corrupt record")
	apply := func(m Msg) error {
		if string(m.Data) == "bad" {
			return errBad
		}
		return nil
	}

	for _, d := range []string{"ok", "bad", "ok"} {
		if _, err := st.Append(ctx, "bad.a", []byte(d)); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if _, err := st.Follow(ctx, "bad.>", apply); !errors.Is(err, errBad) {
		t.Errorf("Follow over a bad record: error = %v, want %v", err, errBad)
	}

	// A bad record after start-up stops the follower and is reported by Err.
	st2 := newTestStream(t, s, StreamConfig{Name: "LATE", Subjects: []string{"late.>"}})
	f, err := st2.Follow(ctx, "late.>", apply)
	if err != nil {
		t.Fatalf("Follow: %v", err)
	}
	defer f.Stop()
	seq, err := st2.Append(ctx, "late.a", []byte("bad"))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := f.WaitApplied(ctx, seq); !errors.Is(err, errBad) {
		t.Errorf("WaitApplied past a bad record = %v, want %v", err, errBad)
	}
	if err := f.Err(); !errors.Is(err, errBad) {
		t.Errorf("Err() = %v, want %v", err, errBad)
	}
}
