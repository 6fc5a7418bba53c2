package xr

import (
	"context"
	"log/slog"
	"math"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/zerorealm/zerorealm/clients/pionlog"
	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/netstamp"
)

// BenchmarkDataChannelReceive sends one message of eight frames (a load
// run's --batch 8) an op over loopback, from a client with the VR SDK's
// settings to a peer with the realm's, and counts it read. An op's time
// and allocations are both ends' (client and realm share the process):
// what a message costs the two, transport and read loop, without the
// biometrics behind it. cpu-ns/op is the process's CPU time (user and
// system) an op, which other work on a shared machine disturbs less than
// the time.
//   - realm: the realm's API (no interceptors, no codecs, zero-checksum
//     SCTP, detached channels, sockets that record receive stamps) and its
//     read loop, readMessages, dating each message by its sockets' stamp;
//   - realm-unstamped: the same with the sockets pion makes itself, which
//     it reads with their ECN bits, and no stamp asked for;
//   - pion-defaults: pion's default API on both ends and its
//     callback, which copies every message into a new slice.
func BenchmarkDataChannelReceive(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	msg, err := vr.AppendMessage(nil, benchFrames(8))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		stamp bool
	}{{"realm", true}, {"realm-unstamped", false}} {
		b.Run(tc.name, func(b *testing.B) {
			api, err := newWebRTCAPI(webrtcNet{}, tc.stamp, log)
			if err != nil {
				b.Fatal(err)
			}
			defer api.closeMux()
			var stamps *netstamp.UDPGroup
			newRealm := func(webrtc.Configuration) (*webrtc.PeerConnection, error) {
				pc, g, err := api.newPeerConnection()
				stamps = g
				return pc, err
			}
			var dated atomic.Int64
			benchReceive(b, lean(true), newRealm, msg, func(dc *webrtc.DataChannel, onMessage func()) {
				readDatedDetached(b, dc, stamps, func(_ time.Duration, stamped bool) {
					if stamped {
						dated.Add(1)
					}
					onMessage()
				})
			})
			if tc.stamp && netstamp.UDPStamps && dated.Load() == 0 {
				b.Fatal("no message was dated by a receive stamp")
			}
		})
	}
	b.Run("pion-defaults", func(b *testing.B) {
		benchReceive(b, lean(false), lean(false).NewPeerConnection, msg, func(dc *webrtc.DataChannel, onMessage func()) {
			dc.OnMessage(func(webrtc.DataChannelMessage) { onMessage() })
		})
	})
}

// BenchmarkDataChannelIdlePeers keeps 20 connected pairs of peers open,
// sending nothing, and reports the process's CPU time per pair and
// second (cpu-us/pair-s): what a peer connection costs both ends before
// any message, in timers, tickers and ICE keepalives. An op is 100 ms.
func BenchmarkDataChannelIdlePeers(b *testing.B) {
	const pairs = 20
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name   string
		client func() *webrtc.API
		realm  func() newPeer
	}{
		{"realm", func() *webrtc.API { return lean(true) }, func() newPeer {
			api, err := newWebRTCAPI(webrtcNet{}, true, log)
			if err != nil {
				b.Fatal(err)
			}
			return func(webrtc.Configuration) (*webrtc.PeerConnection, error) {
				pc, _, err := api.newPeerConnection()
				return pc, err
			}
		}},
		{"pion-defaults", func() *webrtc.API { return lean(false) }, func() newPeer { return lean(false).NewPeerConnection }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			newRealm := tc.realm()
			for range pairs {
				client, realm := connectPair(ctx, b, tc.client(), newRealm)
				defer client.Close()
				defer realm.Close()
			}
			time.Sleep(time.Second) // past the connectivity checks
			cpu0, t0 := processCPU(b), time.Now()
			b.ResetTimer()
			for range b.N {
				time.Sleep(100 * time.Millisecond)
			}
			b.StopTimer()
			perPairSecond := float64(processCPU(b)-cpu0) / pairs / time.Since(t0).Seconds()
			b.ReportMetric(perPairSecond/1e3, "cpu-us/pair-s")
		})
	}
}

// newPeer makes a peer connection: a pion API's NewPeerConnection.
type newPeer func(webrtc.Configuration) (*webrtc.PeerConnection, error)

// connectPair connects a client of clientAPI, with an open "xr" channel,
// to a peer made by newRealm, which detaches and reads the channel when
// its API detaches channels.
func connectPair(ctx context.Context, b *testing.B, clientAPI *webrtc.API, newRealm newPeer) (client, realm *webrtc.PeerConnection) {
	client, err := clientAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	realm, err = newRealm(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	realm.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnOpen(func() {
			if ch, err := dc.Detach(); err == nil {
				defer ch.Close()
				_ = readMessages(ch, func([]byte, bool) {})
			}
		})
	})
	openXRChannel(ctx, b, client, realm)
	return client, realm
}

// readDatedDetached reads dc once it opens as the realm reads its
// channel: detached, each message dated by stamps (readDatedMessages),
// handing handle its wait and whether it was stamped.
func readDatedDetached(tb testing.TB, dc *webrtc.DataChannel, stamps *netstamp.UDPGroup, handle func(held time.Duration, stamped bool)) {
	dc.OnOpen(func() {
		ch, err := dc.Detach()
		if err != nil {
			tb.Error(err)
			return
		}
		defer ch.Close()
		_ = readDatedMessages(ch, stamps, func(_ []byte, _ bool, held time.Duration, stamped bool) { handle(held, stamped) })
	})
}

// lean is a pion API for loopback peers: with pion's defaults, or with
// what the VR SDK sets besides (no codecs, no interceptors, zero-checksum
// SCTP).
func lean(sdk bool) *webrtc.API {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.LoggerFactory = pionlog.Factory{Log: slog.New(slog.DiscardHandler)}
	if !sdk {
		return webrtc.NewAPI(webrtc.WithSettingEngine(se))
	}
	se.EnableSCTPZeroChecksum(true)
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&webrtc.MediaEngine{}),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
}

// benchReceive connects a client of clientAPI to a peer newRealm makes,
// which reads the "xr" channel with read, and sends b.N messages. At
// most benchWindow are unread at once: the channel is unordered and
// unreliable, as clients open it, and a flood would only measure loss.
// The deadline bounds the whole benchmark run: a lost message fails it
// rather than hang.
func benchReceive(b *testing.B, clientAPI *webrtc.API, newRealm newPeer, msg []byte, read func(dc *webrtc.DataChannel, onMessage func())) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := clientAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	realm, err := newRealm(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	defer realm.Close()
	// A slot of window is taken for each message sent and freed when it
	// is read.
	window := make(chan struct{}, benchWindow)
	var got atomic.Int64
	realm.OnDataChannel(func(dc *webrtc.DataChannel) {
		read(dc, func() {
			got.Add(1)
			select {
			case <-window:
			default:
			}
		})
	})

	dc := openXRChannel(ctx, b, client, realm)

	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	cpu0 := processCPU(b)
	b.ResetTimer()
	for range b.N {
		inFlight(ctx, b, window, &got)
		if err := dc.Send(msg); err != nil {
			b.Fatal(err)
		}
	}
	for range benchWindow { // every message read when the whole window is free
		inFlight(ctx, b, window, &got)
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// inFlight takes a slot of window, waiting while every slot is taken; a
// message lost on the way would never free its slot.
func inFlight(ctx context.Context, b *testing.B, window chan struct{}, got *atomic.Int64) {
	select {
	case window <- struct{}{}:
	case <-ctx.Done():
		b.Fatalf("a message was lost: %d read before the deadline", got.Load())
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// signal exchanges offer and answer with every candidate in them, as the
// realm and its clients do.
func signal(ctx context.Context, offerer, answerer *webrtc.PeerConnection) error {
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := setLocalGathered(ctx, offerer, offer); err != nil {
		return err
	}
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		return err
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := setLocalGathered(ctx, answerer, answer); err != nil {
		return err
	}
	return offerer.SetRemoteDescription(*answerer.LocalDescription())
}

// setLocalGathered sets pc's local description and waits until its
// candidates are gathered, so that the description carries them all.
func setLocalGathered(ctx context.Context, pc *webrtc.PeerConnection, desc webrtc.SessionDescription) error {
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return err
	}
	select {
	case <-gathered:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// benchFrames is plain, valid motion: a head swaying, hands circling.
func benchFrames(n int) []vr.Frame {
	out := make([]vr.Frame, n)
	for i := range out {
		t := float64(i) / 72
		out[i] = vr.Frame{
			TimeUS: uint64(t*1e6) + 1,
			Seq:    uint32(i),
			Head:   vr.Pose{Pos: [3]float32{0, 1.7, float32(0.05 * math.Sin(t))}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
			Left:   vr.Pose{Pos: [3]float32{-0.3, 1.2, -0.3}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
			Right:  vr.Pose{Pos: [3]float32{0.3, 1.2, -0.3}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
		}
	}
	return out
}

// openXRChannel opens the client's "xr" channel to realm as clients open
// it (unordered, no retransmits), signals the pair and waits until the
// channel is open.
func openXRChannel(ctx context.Context, tb testing.TB, client, realm *webrtc.PeerConnection) *webrtc.DataChannel {
	ordered, retransmits := false, uint16(0)
	dc, err := client.CreateDataChannel("xr", &webrtc.DataChannelInit{Ordered: &ordered, MaxRetransmits: &retransmits})
	if err != nil {
		tb.Fatal(err)
	}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	if err := signal(ctx, client, realm); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-opened:
	case <-ctx.Done():
		tb.Fatal("data channel not open")
	}
	return dc
}
