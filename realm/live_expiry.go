package realm

import (
	"context"
	"errors"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
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

// sessionTouchEvery is how stale a session's LastSeen may get before a use
// rewrites it: the idle timeout stays accurate to a quarter of itself,
// and a session in use costs at most one write a minute.
func sessionTouchEvery(idle time.Duration) time.Duration {
	return min(time.Minute, idle/4)
}

func (c *liveConn) markUsed() { c.lastUse.Store(time.Now().UnixNano()) }

// sessionBound is a WebSocket that lives no longer than its session: the
// realm WebSocket, or a twin console feed.
type sessionBound struct {
	ctx  context.Context // ends with the connection or the realm
	sess session.Session // as authenticated when it connected
	done <-chan struct{} // closed when the connection has ended
	// lastUse is when the client last used the connection; the time it
	// connected if it never sends anything that counts.
	lastUse func() time.Time
	// end closes the connection with 4401 and reason.
	end func(reason string)
}

// watchSessionEnd ends b when its session's lifetime or idle timeout is
// reached, or the session is found revoked, and records the connection's
// use on the session meanwhile. It returns when the connection ends.
func (r *Realm) watchSessionEnd(b sessionBound) {
	idle := r.cfg.SessionIdle
	touchEvery := sessionTouchEvery(idle)
	expires := b.sess.Expires
	stored := b.sess.LastSeen // the session's last use as its record says
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-b.ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		if !now.Before(expires) {
			b.end("session expired (" + session.ReasonLifetime + "): sign in again")
			return
		}
		used := b.lastUse()
		if used.After(stored) && now.Sub(stored) >= touchEvery {
			s, err := r.sessionCall(b, r.sessions.Touch)
			if err != nil {
				if ended := liveSessionEnded(err); ended != "" {
					b.end(ended)
					return
				}
				r.log.Warn("live: could not record a socket's use on its session", "session", b.sess.ID, "err", err)
			} else {
				stored = s.LastSeen
			}
		}
		if idleAt := later(used, stored).Add(idle); !now.Before(idleAt) {
			// Idle here; the session may have been used elsewhere (an HTTP
			// request, another node). Unknown counts as idle: fail closed.
			s, err := r.sessionCall(b, r.sessions.Get)
			if err != nil || s.Revoked || !now.Before(s.LastSeen.Add(idle)) {
				b.end("session expired (" + session.ReasonIdle + "): sign in again")
				return
			}
			stored = s.LastSeen
		}
		next := min(expires.Sub(now), later(used, stored).Add(idle).Sub(now), touchEvery)
		timer.Reset(max(next, time.Millisecond))
	}
}

// sessionCall runs a store call about b's session, bounded in time.
func (r *Realm) sessionCall(b sessionBound, call func(context.Context, string) (session.Session, error)) (session.Session, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	return call(ctx, b.sess.ID)
}

// liveSessionEnded is the close reason for an error that says the session
// has ended, or "" for any other error.
func liveSessionEnded(err error) string {
	var se *session.Error
	switch {
	case errors.As(err, &se):
		return "session " + edge.SessionEndWord(se.Kind) + " (" + se.Reason + "): sign in again"
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
