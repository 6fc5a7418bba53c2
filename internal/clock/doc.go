// Package clock is the one clock of the tree: what time it is, and the
// timers that act when a time comes. Production code takes a Clock and is
// given Real; tests and simulations give it a Manual clock, which moves only
// when Advance is called, so that an expiry, a time to live or a decaying
// score is tested by moving time rather than by waiting for it.
//
// Why a package of our own: the tree needs a handful of operations (Now,
// AfterFunc, NewTimer, NewTicker), a manual clock that also reads as the
// trust package's clock (Set as well as Advance), and one rule for
// AfterFunc that makes tests deterministic: Manual.Advance runs every due
// function on the caller's goroutine, in the order of their times, so
// when Advance returns every expiry it caused has been carried out.
// github.com/jonboulle/clockwork, the closest well-kept library, runs
// each due function on a goroutine of its own, so a test would still
// have to wait and poll after moving time.
//
// Why not testing/synctest (Go 1.25 and later): its bubble fakes time only
// while every goroutine in it is durably blocked, and a goroutine that
// waits on a socket is not. The realm's tests talk to a real NATS server
// and to real WebSockets over loopback, so time inside such a bubble would
// not move while the store answers, and the servers' own goroutines live
// outside the bubble.
//
// What reads which time: a decision about whether something has expired
// or how old it is (sessions, live sockets, presence, ceremonies,
// approvals, trust decay, node staleness) reads the injected Clock, and
// so do the timers that act at such a time. Deadlines that guard I/O
// (socket read and write deadlines, NATS request timeouts, contexts
// around store calls), keepalive pings and durations measured for
// metrics stay on real time: they bound a network, not a rule.
package clock
