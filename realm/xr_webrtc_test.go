package realm

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// TestXRDataChannelRefusesWhatItCannotRead drives the realm's data
// channel reader with a raw pion peer, which can send what the SDK never
// does: a text message is counted and dropped; a binary message longer
// than any frame message is refused as malformed and the client told, as
// over the WebSocket; frames after them still count; and a channel with
// another label is closed. (Longer messages, read into a buffer doubled
// until they fit: TestReadMessagesHandsOnWhatItCannotHold.)
func TestXRDataChannelRefusesWhatItCannotRead(t *testing.T) {
	r := startLocalRealm(t)
	sess := newClient(t, r).Register(webauthntest.New(), "raw-peer")
	ws := dialLive(t, r, sess.Token)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	pc := loopbackPeer(t)
	ordered, retransmits := false, uint16(0)
	xrc, err := pc.CreateDataChannel("xr", &webrtc.DataChannelInit{Ordered: &ordered, MaxRetransmits: &retransmits})
	if err != nil {
		t.Fatal(err)
	}
	other, err := pc.CreateDataChannel("chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	opened, xrClosed, otherClosed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	xrc.OnOpen(func() { close(opened) })
	xrc.OnClose(func() { close(xrClosed) })
	other.OnClose(func() { close(otherClosed) })

	send(t, ws, offerMessage(t, pc))
	answer, _ := readUntil(t, ws, "the realm's answer", isType("webrtc.answer"))
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.Str("sdp")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-opened:
	case <-ctx.Done():
		t.Fatal("the xr data channel did not open")
	}
	select {
	case <-otherClosed:
	case <-ctx.Done():
		t.Fatal("the realm kept a data channel that is not labelled xr")
	}

	messages := func(outcome string) float64 {
		v, _ := realmtest.Metric(t, r.URL(), `zerorealm_xr_messages_total{outcome="`+outcome+`",transport="webrtc"}`)
		return v
	}
	if err := xrc.SendText("hello"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the text message counted as not binary", func() bool { return messages("not-binary") == 1 })

	if err := xrc.Send(make([]byte, biometrics.MaxMessageSize+1)); err != nil {
		t.Fatal(err)
	}
	refusal, _ := readUntil(t, ws, "the refusal of the long message", isType("error"))
	if !strings.Contains(refusal.Str("error"), "binary message refused") {
		t.Fatalf("refusal = %v, want the binary message refused", refusal)
	}
	if messages("malformed") != 1 {
		t.Fatalf("malformed messages = %v, want 1", messages("malformed"))
	}

	// The channel is unordered and never retransmits, as the SDK's is: on
	// a machine starved of CPU a message can be lost on the way, so the
	// frames go again, each time with later timestamps, until one copy
	// counts. The property is that a copy counts at all after the
	// refusals, and that every copy counted was read whole.
	var acc uint64
	sent := 0
	eventually(t, "the frames after the refusals counted", func() bool {
		if a, _, ok := r.xr.StreamCounts(sess.Session.ID); ok && a > 0 {
			acc = a
			return true
		}
		frames, err := vr.AppendMessage(nil, swayFrames(4, uint32(4*sent), 72))
		if err != nil {
			t.Fatal(err)
		}
		if err := xrc.Send(frames); err != nil {
			t.Fatal(err)
		}
		sent++
		time.Sleep(200 * time.Millisecond)
		return false
	})
	if ok := messages("ok"); acc%4 != 0 || ok != float64(acc/4) || int(ok) > sent {
		t.Fatalf("after %d copies of a 4-frame message: %d frames counted in %v messages read, want 4 a message", sent, acc, ok)
	}
	select {
	case <-xrClosed:
		t.Fatal("the realm closed the xr channel after refusing its messages")
	default:
	}
}

// loopbackPeer is a raw pion peer connection that reaches a realm on this
// machine: loopback candidates, no mDNS.
func loopbackPeer(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// offerMessage is the webrtc.offer message of pc's offer, with its
// candidates gathered.
func offerMessage(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	msg, _ := json.Marshal(map[string]string{"type": "webrtc.offer", "sdp": pc.LocalDescription().SDP})
	return string(msg)
}
