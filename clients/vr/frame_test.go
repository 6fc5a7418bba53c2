package vr

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"testing"
)

// TestAppendMessageLayout checks the bytes against the layout written in
// clients/PROTOCOL.md, field by field, so the SDK and the document agree.
func TestAppendMessageLayout(t *testing.T) {
	f := Frame{
		TimeUS: 0x0102030405060708, Seq: 7,
		Head:      Pose{Pos: [3]float32{0, 1.7, 0}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
		Right:     Pose{Pos: [3]float32{0.3, 1.2, -0.3}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
		Gaze:      &Gaze{Dir: [3]float32{0, 0, -1}, PupilMM: 3.5},
		HeartRate: 72,
	}
	msg, err := AppendMessage(nil, []Frame{f})
	if err != nil {
		t.Fatal(err)
	}
	if want := headerSize + frameBaseSize + gazeSize + heartSize; len(msg) != want {
		t.Fatalf("len = %d, want %d", len(msg), want)
	}
	if got := hex.EncodeToString(msg[:4]); got != "01010000" {
		t.Fatalf("header = %s, want 01010000 (version 1, one frame)", got)
	}
	le := binary.LittleEndian
	f32 := func(off int) float32 { return math.Float32frombits(le.Uint32(msg[off:])) }
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"time_us", le.Uint64(msg[4:]), f.TimeUS},
		{"seq", le.Uint32(msg[12:]), uint32(7)},
		{"flags", le.Uint32(msg[16:]), uint32(flagHeadTracked | flagRightTracked | flagGaze | flagHeartRate)},
		{"head.y", f32(20 + 4), float32(1.7)},
		{"head.rot.w", f32(20 + 6*4), float32(1)},
		{"right.x", f32(20 + 2*poseSize), float32(0.3)},
		{"gaze.z", f32(20 + 3*poseSize + 8), float32(-1)},
		{"pupil", f32(20 + 3*poseSize + 12), float32(3.5)},
		{"heart", f32(20 + 3*poseSize + 16), float32(72)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestAppendMessageLimits(t *testing.T) {
	if _, err := AppendMessage(nil, make([]Frame, MaxFramesPerMessage+1)); !errors.Is(err, ErrTooManyFrames) {
		t.Fatalf("AppendMessage(33 frames) = %v, want ErrTooManyFrames", err)
	}
	full := make([]Frame, MaxFramesPerMessage)
	for i := range full {
		full[i].Gaze = &Gaze{}
		full[i].HeartRate = 60
	}
	msg, err := AppendMessage(nil, full)
	if err != nil || len(msg) != MaxMessageSize {
		t.Fatalf("AppendMessage(32 full frames) = %d bytes, %v; want %d", len(msg), err, MaxMessageSize)
	}
	empty, _ := AppendMessage(nil, nil)
	if len(empty) != headerSize {
		t.Fatalf("AppendMessage(no frames) = %d bytes, want a bare header", len(empty))
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	for _, n := range []int{1, 4, 32} {
		b.Run(fmt.Sprintf("%dframes", n), func(b *testing.B) {
			frames := make([]Frame, n)
			buf := make([]byte, 0, MaxMessageSize)
			b.ReportAllocs()
			b.SetBytes(int64(headerSize + n*frameBaseSize))
			b.ResetTimer()
			for range b.N {
				buf, _ = AppendMessage(buf[:0], frames)
			}
		})
	}
}
