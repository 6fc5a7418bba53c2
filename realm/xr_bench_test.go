package realm

import (
	"context"
	"fmt"
	"testing"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
)

// BenchmarkXRIngest measures the realm's per-message cost of a frame
// message, whatever transport brought it: decode, rate check, counting
// and the session's biometric stream (not enrolled: resampling, features
// and liveness, no scoring). b.N messages of n frames of a synthetic
// person each, with time stamps that keep increasing, as a headset's do.
func BenchmarkXRIngest(b *testing.B) {
	r := startRealm(b, Config{Listen: "localhost:0"})
	for _, n := range []int{1, 4, 32} {
		sess := newClient(b, r).Register(webauthntest.New(), fmt.Sprintf("bench-%d", n))
		s, err := r.sessions.Authenticate(context.Background(), sess.Token)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%dframes", n), func(b *testing.B) {
			c := &xrBenchConn{sess: s, send: make(chan []byte, 1<<20)}
			link := r.xr.Attach(c)
			defer func() { link.End() }()
			// Precompute the messages: the benchmark is the realm's cost,
			// not the client's.
			const distinct = 4096
			msgs := synthMessages(b, 7, distinct, n)
			b.ReportAllocs()
			b.SetBytes(int64(len(msgs[0])))
			b.ResetTimer()
			for i := range b.N {
				if i%distinct == 0 && i > 0 {
					b.StopTimer()
					// Start a new stream so timestamps keep increasing.
					link.End()
					link = r.xr.Attach(c)
					b.StartTimer()
				}
				link.Frames(xr.TransportWebSocket, msgs[i%distinct])
				// the realm's rate limit is per second of wall time; the
				// benchmark is not a headset
				link.ResetRate()
			}
			b.StopTimer()
			for len(c.send) > 0 {
				<-c.send
			}
		})
	}
}

// synthMessages are the frame messages of a synthetic person's first
// session at 72 Hz: messages of perMessage frames each, as the SDK
// encodes them.
func synthMessages(tb testing.TB, seed int64, messages, perMessage int) [][]byte {
	tb.Helper()
	msgs := make([][]byte, 0, messages)
	for _, batch := range synthBatches(seed, messages, perMessage) {
		msg, err := vr.AppendMessage(nil, batch)
		if err != nil {
			tb.Fatal(err)
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

// synthBatches are synthMessages' frames, batch by batch, for a client
// that sends them through the SDK.
func synthBatches(seed int64, messages, perMessage int) [][]vr.Frame {
	frames := synth.NewPerson(seed).Session(0).Frames(messages*perMessage, 72)
	batches := make([][]vr.Frame, messages)
	for i := range batches {
		batches[i] = make([]vr.Frame, perMessage)
		for j := range batches[i] {
			batches[i][j] = vrFrame(frames[i*perMessage+j])
		}
	}
	return batches
}

// xrBenchConn is a connection that was never dialled, as the XR edge sees
// one: what the realm sends it waits in send, and it has joined no scene.
type xrBenchConn struct {
	sess session.Session
	send chan []byte
}

func (c *xrBenchConn) Context() context.Context      { return context.Background() }
func (c *xrBenchConn) Session() session.Session      { return c.sess }
func (c *xrBenchConn) Closed() bool                  { return false }
func (c *xrBenchConn) Used()                         {}
func (c *xrBenchConn) Push(msg []byte)               { c.send <- msg }
func (c *xrBenchConn) PushError(text string, _ bool) { c.Push([]byte(text)) }
func (c *xrBenchConn) PushBusy(b *xr.BusyError)      { c.Push([]byte(b.Error())) }
func (c *xrBenchConn) Moved(biometrics.Frame)        {}
