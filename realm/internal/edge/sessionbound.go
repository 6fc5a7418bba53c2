package edge

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/clock"
)

// A realm WebSocket, and a twin console feed, live no longer than their
// session: they are closed with 4401 when the session reaches its absolute
// lifetime or its idle timeout, as a request with its token would be
// refused then.
//
// Idle means no message from the client: a text message (a ping counts) or
// a binary frame message on the socket, or an XR frame on its data
// channel. Messages the realm sends (presence, poses, trust) and the
// WebSocket keepalive pings and pongs are not use: a client left open on a
// scene nobody watches must end like an idle browser tab. Use on the
// socket is written to the session record (session.Manager.Touch) at most
// once per touch period, so a client that streams and never makes an HTTP
// request keeps its token valid for HTTP too; use through HTTP, or through
// another connection, keeps the socket open as well, since the record is
// read again before an idle socket is closed.

// SessionTouchEvery is how stale a session's LastSeen may get before a use
// rewrites it: the idle timeout stays accurate to a quarter of itself,
// and a session in use costs at most one write a minute.
func SessionTouchEvery(idle time.Duration) time.Duration {
	return min(time.Minute, idle/4)
}

// SessionRecords reads and touches session records (session.Manager).
type SessionRecords interface {
	Touch(ctx context.Context, sessionID string) (session.Session, error)
	Get(ctx context.Context, sessionID string) (session.Session, error)
}

// SessionBound is a WebSocket that lives no longer than its session: the
// realm WebSocket, or a twin console feed.
type SessionBound struct {
	Ctx  context.Context // ends with the connection or the realm
	Sess session.Session // as authenticated when it connected
	// LastUse is when the client last used the connection; the time it
	// connected if it never sends anything that counts.
	LastUse func() time.Time
	// End closes the connection with CloseSessionEnded and reason.
	End func(reason string)
}

// WatchSessionEnd ends b when its session's lifetime or idle timeout is
// reached, or the session is found revoked, and records the connection's
// use on the session meanwhile. It arms a timer on clk and returns at
// once; the caller calls stop when the connection ends. Each check runs
// when clk's timer fires, so with a clock.Manual a check that ends the
// connection has called End by the time Advance returns.
func WatchSessionEnd(b SessionBound, records SessionRecords, idle time.Duration, clk clock.Clock, log *slog.Logger) (stop func()) {
	w := &sessionWatch{b: b, records: records, idle: idle, touchEvery: SessionTouchEvery(idle), clk: clk, log: log, stored: b.Sess.LastSeen}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = clk.AfterFunc(w.next(clk.Now(), b.LastUse()), w.check)
	return w.stop
}

// sessionWatch is the state of one WatchSessionEnd.
//
// mu is held through a check, store calls included, so that stop waits
// for a check under way and no check re-arms the timer after stop.
type sessionWatch struct {
	b          SessionBound
	records    SessionRecords
	idle       time.Duration
	touchEvery time.Duration
	clk        clock.Clock
	log        *slog.Logger

	mu      sync.Mutex
	timer   clock.Timer
	stored  time.Time // the session's last use as its record says
	stopped bool
}

func (w *sessionWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}

// next is how long until the watch must look again: the lifetime, the
// idle timeout or the next touch, whichever comes first.
func (w *sessionWatch) next(now, used time.Time) time.Duration {
	d := min(w.b.Sess.Expires.Sub(now), later(used, w.stored).Add(w.idle).Sub(now), w.touchEvery)
	return max(d, time.Millisecond)
}

func (w *sessionWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.b.Ctx.Err() != nil {
		return
	}
	if reason := w.ended(); reason != "" {
		w.stopped = true
		w.b.End(reason)
		return
	}
	w.timer.Reset(w.next(w.clk.Now(), w.b.LastUse()))
}

// ended is the close reason if the session has ended, or "" after
// recording the connection's use when it is due.
func (w *sessionWatch) ended() string {
	b := w.b
	now := w.clk.Now()
	if !now.Before(b.Sess.Expires) {
		return "session expired (" + session.ReasonLifetime + "): sign in again"
	}
	used := b.LastUse()
	if used.After(w.stored) && now.Sub(w.stored) >= w.touchEvery {
		s, err := sessionCall(b, w.records.Touch)
		if err != nil {
			if ended := sessionEndedReason(err); ended != "" {
				return ended
			}
			w.log.Warn("live: could not record a socket's use on its session", "session", b.Sess.ID, "err", err)
		} else {
			w.stored = s.LastSeen
		}
	}
	if idleAt := later(used, w.stored).Add(w.idle); !now.Before(idleAt) {
		// Idle here; the session may have been used elsewhere (an HTTP
		// request, another node). Unknown counts as idle: fail closed.
		s, err := sessionCall(b, w.records.Get)
		if err != nil || s.Revoked || !now.Before(s.LastSeen.Add(w.idle)) {
			return "session expired (" + session.ReasonIdle + "): sign in again"
		}
		w.stored = s.LastSeen
	}
	return ""
}

// sessionCall runs a store call about b's session, bounded in real time:
// the bound guards the network, not the session's rules.
func sessionCall(b SessionBound, call func(context.Context, string) (session.Session, error)) (session.Session, error) {
	ctx, cancel := context.WithTimeout(b.Ctx, 5*time.Second)
	defer cancel()
	return call(ctx, b.Sess.ID)
}

// sessionEndedReason is the close reason for an error that says the session
// has ended, or "" for any other error.
func sessionEndedReason(err error) string {
	var se *session.Error
	switch {
	case errors.As(err, &se):
		return "session " + SessionEndWord(se.Kind) + " (" + se.Reason + "): sign in again"
	case errors.Is(err, session.ErrInvalidSession):
		return "session ended: sign in again"
	}
	return ""
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
