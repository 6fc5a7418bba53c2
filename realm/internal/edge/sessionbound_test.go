package edge

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

// watched is one connection under WatchSessionEnd, on a real session
// manager over an embedded NATS server and a manual clock.
type watched struct {
	clk  *clock.Manual
	sess session.Session
	mu   sync.Mutex
	used time.Time
	ends []string
	stop func()
}

func (w *watched) lastUse() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.used }
func (w *watched) use()               { w.mu.Lock(); defer w.mu.Unlock(); w.used = w.clk.Now() }
func (w *watched) ended() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.ends...)
}

func watchSession(t *testing.T, idle, lifetime time.Duration) *watched {
	t.Helper()
	ctx := context.Background()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	log := slog.New(slog.DiscardHandler)
	st, err := store.New(ctx, nc, store.Config{Logger: log, RecordKey: []byte("zerorealm test record key 32 by!")})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewManual(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	m, err := session.New(ctx, st, session.Config{IdleTimeout: idle, Lifetime: lifetime, TouchEvery: SessionTouchEvery(idle), Now: clk.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	_, sess, err := m.Create(ctx, "av_0123456789abcdef0123456789abcdef", session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	w := &watched{clk: clk, sess: sess, used: clk.Now()}
	w.stop = WatchSessionEnd(SessionBound{Ctx: ctx, Sess: sess, LastUse: w.lastUse, End: func(reason string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.ends = append(w.ends, reason)
	}}, m, idle, clk, log)
	t.Cleanup(w.stop)
	return w
}

// TestWatchEndsAnUnusedConnectionAtTheIdleTimeout: on a manual clock the
// watch's checks run inside Advance, so the end is decided, once, exactly
// when the idle timeout is reached, and not a nanosecond before.
func TestWatchEndsAnUnusedConnectionAtTheIdleTimeout(t *testing.T) {
	const idle = 10 * time.Minute
	w := watchSession(t, idle, time.Hour)
	w.clk.Advance(idle - time.Nanosecond)
	if got := w.ended(); len(got) != 0 {
		t.Fatalf("ended before the idle timeout: %q", got)
	}
	w.clk.Advance(time.Nanosecond)
	if got := w.ended(); len(got) != 1 || !strings.Contains(got[0], session.ReasonIdle) {
		t.Fatalf("at the idle timeout: ends %q, want one naming %q", got, session.ReasonIdle)
	}
	w.clk.Advance(time.Hour)
	if got := w.ended(); len(got) != 1 {
		t.Fatalf("ended %d times", len(got))
	}
}

// TestWatchKeepsAUsedConnectionUntilTheLifetime: use keeps the session
// from idling out (the watch writes it to the record), but not past its
// lifetime; after stop, nothing ends.
func TestWatchKeepsAUsedConnectionUntilTheLifetime(t *testing.T) {
	const idle, lifetime = 10 * time.Minute, time.Hour
	w := watchSession(t, idle, lifetime)
	for w.clk.Now().Before(w.sess.Expires.Add(-5 * time.Minute)) {
		w.use()
		w.clk.Advance(5 * time.Minute)
		if got := w.ended(); len(got) != 0 {
			t.Fatalf("a connection in use ended at %s: %q", w.clk.Now().Sub(w.sess.Created), got)
		}
	}
	w.use()
	w.clk.Advance(5*time.Minute - time.Nanosecond)
	if got := w.ended(); len(got) != 0 {
		t.Fatalf("ended a nanosecond before the lifetime: %q", got)
	}
	w.clk.Advance(time.Nanosecond)
	if got := w.ended(); len(got) != 1 || !strings.Contains(got[0], session.ReasonLifetime) {
		t.Fatalf("at the lifetime: ends %q, want one naming %q", got, session.ReasonLifetime)
	}
}

func TestWatchStoppedEndsNothing(t *testing.T) {
	w := watchSession(t, 10*time.Minute, time.Hour)
	w.stop()
	w.clk.Advance(2 * time.Hour)
	if got := w.ended(); len(got) != 0 {
		t.Fatalf("a stopped watch ended its connection: %q", got)
	}
	if n := w.clk.Armed(); n != 0 {
		t.Fatalf("a stopped watch left %d timers armed", n)
	}
}
