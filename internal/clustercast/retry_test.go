package clustercast

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the test binary when goroutines outlive its tests: the
// background attempts must end with Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	errDown    = errors.New("store down")
	errNothing = errors.New("nothing to store")
)

func newTestRetrier() *Retrier {
	return NewRetrier(time.Millisecond, 4*time.Millisecond, func(err error) bool { return errors.Is(err, errNothing) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func waitPending(t *testing.T, r *Retrier, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.Pending() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Pending = %d, want %d", r.Pending(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRetrierStoresUntilStored: a write that fails its first attempt is
// reported not stored, retried in the background until it succeeds, and
// then no longer pending; one that succeeds at once leaves nothing.
func TestRetrierStoresUntilStored(t *testing.T) {
	r := newTestRetrier()
	defer r.Close()
	if !r.Now(t.Context(), time.Second, func(context.Context) error { return nil }) || r.Pending() != 0 {
		t.Fatal("a write that succeeded is not reported stored, or left an attempt")
	}
	var calls atomic.Int32
	write := func(context.Context) error {
		if calls.Add(1) < 4 {
			return errDown
		}
		return nil
	}
	if r.Now(t.Context(), time.Second, write) {
		t.Fatal("a failed write is reported stored")
	}
	waitPending(t, r, 0)
	if calls.Load() != 4 {
		t.Fatalf("%d attempts, want 4: retried until the first success, then no more", calls.Load())
	}
}

// TestRetrierEndsOnNothingToStoreAndOnClose: an error that the done
// function names ends the attempts as if stored; Close ends the attempts
// of a write that never succeeds, and waits for them.
func TestRetrierEndsOnNothingToStoreAndOnClose(t *testing.T) {
	r := newTestRetrier()
	if !r.Now(t.Context(), time.Second, func(context.Context) error { return errNothing }) {
		t.Fatal("nothing to store is not the end of the attempts")
	}
	var calls atomic.Int32
	r.Later(time.Millisecond, func(context.Context) error {
		if calls.Add(1) == 2 {
			return errNothing
		}
		return errDown
	})
	waitPending(t, r, 0)
	never := func(context.Context) error { calls.Add(1); return errDown }
	r.Later(time.Millisecond, never)
	r.Close()
	if r.Pending() != 0 {
		t.Fatalf("Pending = %d after Close", r.Pending())
	}
}

// TestTimingDefaultsAndRefusals: zero durations take the documented
// defaults; a negative one, or RetryMax below RetryMin, is refused.
func TestTimingDefaultsAndRefusals(t *testing.T) {
	got, err := Timing{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Timing{AckWait: time.Second, StoreWait: time.Second, RetryMin: 100 * time.Millisecond, RetryMax: 5 * time.Second, RedriveAfter: 5 * time.Second}); got != want {
		t.Fatalf("defaults = %+v, want %+v", got, want)
	}
	for _, bad := range []Timing{{AckWait: -1}, {RedriveAfter: -time.Second}, {RetryMin: time.Second, RetryMax: time.Millisecond}} {
		if _, err := bad.WithDefaults(); !errors.Is(err, ErrInvalidTiming) {
			t.Errorf("%+v: %v, want ErrInvalidTiming", bad, err)
		}
	}
}

// TestDecodeAckRefusesWhatIsNotOne: an acknowledgement is one JSON object
// naming a node, with nothing unknown, twice or too long.
func TestDecodeAckRefusesWhatIsNotOne(t *testing.T) {
	if a, err := DecodeAck([]byte(`{"node":"a","denied":2}`)); err != nil || a != (Ack{Node: "a", Denied: 2}) {
		t.Fatalf("DecodeAck = %+v, %v", a, err)
	}
	for _, bad := range []string{`{"denied":1}`, `{"node":"a","node":"b"}`, `{"node":"a","extra":1}`, `null`, `{"node":"a"} {}`, `{"node":"` + string(make([]byte, 2000)) + `"}`} {
		if _, err := DecodeAck([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeAck(%.40q) = %v, want ErrMalformed", bad, err)
		}
	}
}
