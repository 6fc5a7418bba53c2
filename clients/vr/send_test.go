package vr

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsPeer is the realm's side of the realm WebSocket, as far as Send
// needs one: a real gorilla server over loopback that says hello and
// hands every binary message it receives to got.
type wsPeer struct {
	srv  *httptest.Server
	got  chan []byte
	send chan string // text messages to write to the client
	keep bool        // hand what is read to got
	wg   sync.WaitGroup
}

func newWSPeer(tb testing.TB, keep bool) *wsPeer {
	tb.Helper()
	p := &wsPeer{got: make(chan []byte, 1024), send: make(chan string, 16), keep: keep}
	up := websocket.Upgrader{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","v":1,"session":{},"avatar":{},"trust":{"state":"trusted","score":0.7}}`)); err != nil {
			return
		}
		stop := make(chan struct{})
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				select {
				case <-stop:
					return
				case s := <-p.send:
					if conn.WriteMessage(websocket.TextMessage, []byte(s)) != nil {
						return
					}
				}
			}
		}()
		defer close(stop)
		// One buffer for every message, so that a benchmark counts the
		// client's allocations, not these.
		var buf bytes.Buffer
		for {
			kind, rd, err := conn.NextReader()
			if err == nil {
				buf.Reset()
				_, err = buf.ReadFrom(rd)
			}
			if err != nil {
				return
			}
			if kind == websocket.BinaryMessage && p.keep {
				p.got <- bytes.Clone(buf.Bytes())
			}
		}
	}))
	tb.Cleanup(func() { p.srv.Close(); p.wg.Wait() })
	return p
}

func (p *wsPeer) dial(tb testing.TB, cfg Config) *Client {
	tb.Helper()
	cfg.URL, cfg.Token, cfg.Transport = p.srv.URL, "zrs_test", WebSocket
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// sampleFrames is a message's worth of frames, two with gaze and heart
// rate.
func sampleFrames(n int, seq uint32) []Frame {
	frames := make([]Frame, n)
	for i := range frames {
		frames[i] = Frame{TimeUS: 1_000_000 + uint64(seq+uint32(i))*13_889, Seq: seq + uint32(i),
			Head:  Pose{Pos: [3]float32{0.1, 1.6, float32(i)}, Rot: [4]float32{0, 0.7071068, 0, 0.7071068}, Tracked: true},
			Left:  Pose{Pos: [3]float32{-0.3, 1.1, -0.4}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
			Right: Pose{Pos: [3]float32{0.3, 1.1, -0.4}, Rot: [4]float32{0, 0, 0, 1}, Tracked: i%3 != 0}}
		if i%4 == 0 {
			frames[i].Gaze = &Gaze{Dir: [3]float32{0, 0, -1}, PupilMM: 3.5}
			frames[i].HeartRate = 70
		}
	}
	return frames
}

// TestSendWebSocketBytes: what the realm's side reads of each message
// Send writes is AppendMessage's bytes, message after message.
func TestSendWebSocketBytes(t *testing.T) {
	p := newWSPeer(t, true)
	c := p.dial(t, Config{})
	for i := range 50 {
		frames := sampleFrames(1+i%MaxFramesPerMessage, uint32(i)*40)
		want, _ := AppendMessage(nil, frames)
		if err := c.Send(frames); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		select {
		case got := <-p.got:
			if !bytes.Equal(got, want) {
				t.Fatalf("message %d: the realm read %x, want %x", i, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d never arrived", i)
		}
	}
	if st := c.Stats(); st.Messages != 50 {
		t.Fatalf("Stats = %+v, want 50 messages", st)
	}
	// No peer connection to tell of: the realm's own tests check a
	// WebRTC client's (TestXRBehindNodeShedsDataChannelsOverRealPeers).
	if peer, channel := c.WebRTCState(); peer != "" || channel != "" {
		t.Fatalf("WebRTCState over the WebSocket = %q, %q, want none", peer, channel)
	}
}

// BenchmarkSendWebSocket is Send of one message of 8 frames over a real
// WebSocket on loopback, the write system call and the peer's read
// included.
func BenchmarkSendWebSocket(b *testing.B) {
	p := newWSPeer(b, false)
	c := p.dial(b, Config{})
	frames := sampleFrames(8, 0)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Send(frames); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseXR is the reader's work on the realm's messages a
// streaming client receives most: a window's score and the stream's
// status.
func BenchmarkParseXR(b *testing.B) {
	for name, msg := range map[string]string{"score": realmSamples[2], "status": realmSamples[3]} {
		b.Run(name, func(b *testing.B) {
			data := []byte(msg)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseRealmMessage(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
