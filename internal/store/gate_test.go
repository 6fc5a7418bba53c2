package store

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

var errDiskNearlyFull = errors.New("the disk is nearly full")

// TestWriteGateRefusesEveryWriteBeforeSending closes the gate: every kind
// of write fails with ErrInsufficientStorage (and ErrUnavailable) and
// stores nothing, reads and deletes still work, bad arguments are still
// ErrInvalid, and writes go ahead again once the gate opens.
func TestWriteGateRefusesEveryWriteBeforeSending(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	var closed atomic.Bool
	s := newTestStore(t, natstest.Connect(t, srv.ClientURL()), Config{WriteGate: func() error {
		if closed.Load() {
			return errDiskNearlyFull
		}
		return nil
	}})
	b, err := s.Bucket(ctx, BucketConfig{Name: "gate"})
	if err != nil {
		t.Fatal(err)
	}
	st := newTestStream(t, s, StreamConfig{Name: "GATE", Subjects: []string{"gate.>"}, AllowAtomic: true})
	rev, err := b.Put(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, "gate.a", []byte("1")); err != nil {
		t.Fatal(err)
	}

	closed.Store(true)
	writes := map[string]func() error{
		"Put":          func() error { _, err := b.Put(ctx, "k", []byte("w")); return err },
		"Create":       func() error { _, err := b.Create(ctx, "new", []byte("w")); return err },
		"Update":       func() error { _, err := b.Update(ctx, "k", []byte("w"), rev); return err },
		"Append":       func() error { _, err := st.Append(ctx, "gate.a", []byte("2")); return err },
		"AppendIfLast": func() error { _, err := st.AppendIfLast(ctx, "gate.a", []byte("2"), 1, WithMsgID("m")); return err },
		"AppendAtomic": func() error {
			_, err := st.AppendAtomic(ctx, []AtomicMsg{{Subject: "gate.b", Data: []byte("x")}, {Subject: "gate.c", Data: []byte("y")}})
			return err
		},
	}
	for name, write := range writes {
		err := write()
		if !errors.Is(err, ErrInsufficientStorage) || !errors.Is(err, ErrUnavailable) || !errors.Is(err, errDiskNearlyFull) {
			t.Errorf("%s with the gate closed = %v, want ErrInsufficientStorage, ErrUnavailable and the gate's reason", name, err)
		}
	}
	if e, err := b.Get(ctx, "k"); err != nil || string(e.Value) != "v" || e.Revision != rev {
		t.Fatalf("Get with the gate closed = %+v, %v; want the value stored before", e, err)
	}
	for subject, want := range map[string]uint64{"gate.a": 1, "gate.b": 0, "gate.c": 0} {
		if n := subjectCount(t, st, subject); n != want {
			t.Fatalf("%s holds %d messages after refused appends, want %d", subject, n, want)
		}
	}
	if _, err := b.Put(ctx, "bad key!", []byte("w")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Put of a bad key with the gate closed = %v, want ErrInvalid first", err)
	}
	if err := b.Delete(ctx, "k", 0); err != nil {
		t.Fatalf("Delete with the gate closed = %v, want it to go ahead", err)
	}

	closed.Store(false)
	if _, err := b.Put(ctx, "k", []byte("again")); err != nil {
		t.Fatalf("Put with the gate open again: %v", err)
	}
	if _, err := st.Append(ctx, "gate.a", []byte("2")); err != nil {
		t.Fatalf("Append with the gate open again: %v", err)
	}
}
