package xr

import (
	"context"
	"log/slog"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/zerorealm/zerorealm/clients/pionlog"
	"github.com/zerorealm/zerorealm/clients/vr"
)

// BenchmarkDataChannelReceive sends one message of eight frames (a load
// run's --batch 8) an op over loopback, from a client with the VR SDK's
// settings to a peer with the realm's, and counts it read. An op's time
// and allocations are both ends' (client and realm share the process):
// what a message costs the two, transport and read loop, without the
// biometrics behind it.
//   - realm: the realm's API (no interceptors, no codecs, zero-checksum
//     SCTP, detached channels) and its read loop, readMessages;
//   - pion-defaults: pion's default API on both ends and its
//     callback, which copies every message into a new slice.
func BenchmarkDataChannelReceive(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	msg, err := vr.AppendMessage(nil, benchFrames(8))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("realm", func(b *testing.B) {
		api, closeMux, err := newWebRTCAPI(0, log)
		if err != nil {
			b.Fatal(err)
		}
		defer closeMux()
		client := lean(true)
		benchReceive(b, client, api, msg, func(dc *webrtc.DataChannel, got *atomic.Int64) {
			dc.OnOpen(func() {
				ch, err := dc.Detach()
				if err != nil {
					b.Error(err)
					return
				}
				defer ch.Close()
				_ = readMessages(ch, func([]byte, bool) { got.Add(1) })
			})
		})
	})
	b.Run("pion-defaults", func(b *testing.B) {
		benchReceive(b, lean(false), lean(false), msg, func(dc *webrtc.DataChannel, got *atomic.Int64) {
			dc.OnMessage(func(webrtc.DataChannelMessage) { got.Add(1) })
		})
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

// benchReceive connects a client of clientAPI to a peer of realmAPI,
// whose "xr" channel read counts into got, and sends b.N messages. At
// most benchWindow are unread at once: the channel is unordered and
// unreliable, as clients open it, and a flood would only measure loss.
func benchReceive(b *testing.B, clientAPI, realmAPI *webrtc.API, msg []byte, read func(*webrtc.DataChannel, *atomic.Int64)) {
	const benchWindow = 16
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := clientAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	realm, err := realmAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	defer realm.Close()
	var got atomic.Int64
	realm.OnDataChannel(func(dc *webrtc.DataChannel) { read(dc, &got) })

	ordered, retransmits := false, uint16(0)
	dc, err := client.CreateDataChannel("xr", &webrtc.DataChannelInit{Ordered: &ordered, MaxRetransmits: &retransmits})
	if err != nil {
		b.Fatal(err)
	}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	if err := signal(ctx, client, realm); err != nil {
		b.Fatal(err)
	}
	select {
	case <-opened:
	case <-ctx.Done():
		b.Fatal("data channel not open")
	}

	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := range b.N {
		for int64(i)-got.Load() >= benchWindow {
			if ctx.Err() != nil {
				b.Fatalf("%d of %d messages read before the deadline", got.Load(), i)
			}
			time.Sleep(20 * time.Microsecond)
		}
		if err := dc.Send(msg); err != nil {
			b.Fatal(err)
		}
	}
	for got.Load() < int64(b.N) {
		if ctx.Err() != nil {
			b.Fatalf("%d of %d messages read before the deadline", got.Load(), b.N)
		}
		time.Sleep(20 * time.Microsecond)
	}
	b.StopTimer()
}

// signal exchanges offer and answer with every candidate in them, as the
// realm and its clients do.
func signal(ctx context.Context, offerer, answerer *webrtc.PeerConnection) error {
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		return err
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		return err
	}
	gathered = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	return offerer.SetRemoteDescription(*answerer.LocalDescription())
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
