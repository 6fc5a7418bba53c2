package edge

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
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
	Done <-chan struct{} // closed when the connection has ended
	// LastUse is when the client last used the connection; the time it
	// connected if it never sends anything that counts.
	LastUse func() time.Time
	// End closes the connection with CloseSessionEnded and reason.
	End func(reason string)
}

// WatchSessionEnd ends b when its session's lifetime or idle timeout is
// reached, or the session is found revoked, and records the connection's
// use on the session meanwhile. It returns when the connection ends.
func WatchSessionEnd(b SessionBound, records SessionRecords, idle time.Duration, log *slog.Logger) {
	touchEvery := SessionTouchEvery(idle)
	expires := b.Sess.Expires
	stored := b.Sess.LastSeen // the session's last use as its record says
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-b.Done:
			return
		case <-b.Ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		if !now.Before(expires) {
			b.End("session expired (" + session.ReasonLifetime + "): sign in again")
			return
		}
		used := b.LastUse()
		if used.After(stored) && now.Sub(stored) >= touchEvery {
			s, err := sessionCall(b, records.Touch)
			if err != nil {
				if ended := sessionEndedReason(err); ended != "" {
					b.End(ended)
					return
				}
				log.Warn("live: could not record a socket's use on its session", "session", b.Sess.ID, "err", err)
			} else {
				stored = s.LastSeen
			}
		}
		if idleAt := later(used, stored).Add(idle); !now.Before(idleAt) {
			// Idle here; the session may have been used elsewhere (an HTTP
			// request, another node). Unknown counts as idle: fail closed.
			s, err := sessionCall(b, records.Get)
			if err != nil || s.Revoked || !now.Before(s.LastSeen.Add(idle)) {
				b.End("session expired (" + session.ReasonIdle + "): sign in again")
				return
			}
			stored = s.LastSeen
		}
		next := min(expires.Sub(now), later(used, stored).Add(idle).Sub(now), touchEvery)
		timer.Reset(max(next, time.Millisecond))
	}
}

// sessionCall runs a store call about b's session, bounded in time.
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
