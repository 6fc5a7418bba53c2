package biometrics

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

func sampleFrame(t uint64, seq uint32) Frame {
	id := [4]float32{0, 0, 0, 1}
	return Frame{
		TimeUS: t, Seq: seq,
		Head:  Pose{Pos: [3]float32{0.1, 1.7, -0.2}, Rot: [4]float32{0, 0.0998, 0, 0.995}, Tracked: true},
		Left:  Pose{Pos: [3]float32{-0.25, 1.2, -0.4}, Rot: id, Tracked: true},
		Right: Pose{Pos: [3]float32{0.25, 1.25, -0.35}, Rot: id, Tracked: true},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	withGaze := sampleFrame(2000, 2)
	withGaze.Gaze = &Gaze{Dir: [3]float32{0, 0, -1}, PupilMM: 3.5}
	withHR := sampleFrame(3000, 3)
	withHR.HeartRate = 72
	untracked := sampleFrame(4000, 4)
	untracked.Left = Pose{} // untracked pose may carry zeros
	both := sampleFrame(5000, 5)
	both.Gaze = &Gaze{Dir: [3]float32{0.6, 0, -0.8}}
	both.HeartRate = 90
	tests := []struct {
		name   string
		frames []Frame
	}{
		{"empty", nil},
		{"one", []Frame{sampleFrame(1000, 1)}},
		{"optional blocks", []Frame{sampleFrame(1000, 1), withGaze, withHR, untracked, both}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := Encode(nil, tc.frames)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, rejects, err := Decode(msg, nil)
			if err != nil || len(rejects) != 0 {
				t.Fatalf("Decode = %v, %v; want no error, no rejects", rejects, err)
			}
			if len(got) != len(tc.frames) {
				t.Fatalf("Decode returned %d frames, want %d", len(got), len(tc.frames))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], tc.frames[i]) {
					t.Errorf("frame %d = %+v, want %+v", i, got[i], tc.frames[i])
				}
			}
		})
	}
}

// TestDecodeWireLayout pins the byte layout documented in clients/PROTOCOL.md.
func TestDecodeWireLayout(t *testing.T) {
	f := sampleFrame(0x0102030405060708, 0x0a0b0c0d)
	f.HeartRate = 60
	msg, err := Encode(nil, []Frame{f})
	if err != nil {
		t.Fatal(err)
	}
	if want := 4 + 100 + 4; len(msg) != want {
		t.Fatalf("len(Encode) = %d, want %d", len(msg), want)
	}
	wantPrefix := []byte{1, 1, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1, 0x0d, 0x0c, 0x0b, 0x0a, 0x17, 0, 0, 0}
	if !reflect.DeepEqual(msg[:len(wantPrefix)], wantPrefix) {
		t.Errorf("header = % x, want % x", msg[:len(wantPrefix)], wantPrefix)
	}
}

func TestDecodeMessageErrors(t *testing.T) {
	good, _ := Encode(nil, []Frame{sampleFrame(1, 1), sampleFrame(2, 2)})
	over := append([]byte{}, good...)
	over[1] = MaxFramesPerMessage + 1
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrShortMessage},
		{"short header", []byte{1, 0}, ErrShortMessage},
		{"version 2", append([]byte{2}, good[1:]...), ErrVersion},
		{"reserved header", append([]byte{1, 2, 1, 0}, good[4:]...), ErrVersion},
		{"too many frames", over, ErrTooManyFrames},
		{"truncated", good[:len(good)-1], ErrLengthMismatch},
		{"truncated header of frame", good[:10], ErrLengthMismatch},
		{"trailing byte", append(append([]byte{}, good...), 0), ErrLengthMismatch},
		{"count too high", append([]byte{1, 3, 0, 0}, good[4:]...), ErrLengthMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []Frame{sampleFrame(9, 9)}
			got, _, err := Decode(tc.msg, dst)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(%x) error = %v, want %v", tc.msg, err, tc.want)
			}
			if len(got) != 1 {
				t.Errorf("Decode changed dst: %d frames, want 1", len(got))
			}
		})
	}
}

func TestEncodeTooManyFrames(t *testing.T) {
	_, err := Encode(nil, make([]Frame, MaxFramesPerMessage+1))
	if !errors.Is(err, ErrTooManyFrames) {
		t.Fatalf("Encode(33 frames) error = %v, want %v", err, ErrTooManyFrames)
	}
}

func TestDecodeRejectsBadFrames(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name   string
		mutate func(*Frame)
		want   string
	}{
		{"NaN position", func(f *Frame) { f.Head.Pos[1] = nan }, ReasonNonFinite},
		{"Inf rotation", func(f *Frame) { f.Left.Rot[0] = inf }, ReasonNonFinite},
		{"NaN in untracked pose", func(f *Frame) { f.Right.Tracked = false; f.Right.Pos[0] = nan }, ReasonNonFinite},
		{"-Inf in untracked pose", func(f *Frame) { f.Right.Tracked = false; f.Right.Rot[3] = -inf }, ReasonNonFinite},
		{"largest finite position", func(f *Frame) { f.Left.Pos[0] = -math.MaxFloat32 }, ReasonPosition},
		{"heart rate Inf", func(f *Frame) { f.HeartRate = inf }, ReasonNonFinite},
		{"zero quaternion", func(f *Frame) { f.Right.Rot = [4]float32{} }, ReasonQuaternion},
		{"long quaternion", func(f *Frame) { f.Head.Rot = [4]float32{0, 0, 0, 1.1} }, ReasonQuaternion},
		{"absurd position", func(f *Frame) { f.Left.Pos[2] = 5000 }, ReasonPosition},
		{"gaze not unit", func(f *Frame) { f.Gaze = &Gaze{Dir: [3]float32{0, 0, -2}} }, ReasonGaze},
		{"pupil huge", func(f *Frame) { f.Gaze = &Gaze{Dir: [3]float32{0, 0, -1}, PupilMM: 40} }, ReasonGaze},
		{"gaze NaN", func(f *Frame) { f.Gaze = &Gaze{Dir: [3]float32{nan, 0, -1}} }, ReasonNonFinite},
		{"heart rate 400", func(f *Frame) { f.HeartRate = 400 }, ReasonHeartRate},
		{"heart rate negative", func(f *Frame) { f.HeartRate = -5 }, ReasonHeartRate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := sampleFrame(2000, 2)
			tc.mutate(&bad)
			msg, err := Encode(nil, []Frame{sampleFrame(1000, 1), bad, sampleFrame(3000, 3)})
			if err != nil {
				t.Fatal(err)
			}
			got, rejects, err := Decode(msg, nil)
			if err != nil {
				t.Fatalf("Decode error = %v, want nil", err)
			}
			want := []Reject{{Index: 1, Reason: tc.want}}
			if !reflect.DeepEqual(rejects, want) {
				t.Errorf("Decode rejects = %v, want %v", rejects, want)
			}
			if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 3 {
				t.Errorf("Decode kept %v, want frames 1 and 3", got)
			}
		})
	}
}

func TestDecodeRejectsNonMonotonicAndFlags(t *testing.T) {
	msg, _ := Encode(nil, []Frame{sampleFrame(1000, 1), sampleFrame(1000, 2), sampleFrame(500, 3), sampleFrame(1500, 4)})
	_, rejects, err := Decode(msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Reject{{1, ReasonNonMonotonic}, {2, ReasonNonMonotonic}}
	if !reflect.DeepEqual(rejects, want) {
		t.Errorf("Decode rejects = %v, want %v", rejects, want)
	}

	msg, _ = Encode(nil, []Frame{sampleFrame(1000, 1)})
	msg[4+12+1] = 0x80 // a reserved flag bit
	_, rejects, err = Decode(msg, nil)
	if err != nil || !reflect.DeepEqual(rejects, []Reject{{0, ReasonReservedFlags}}) {
		t.Errorf("Decode(reserved flag) = %v, %v; want one %q reject", rejects, err, ReasonReservedFlags)
	}

	f := sampleFrame(1000, 1)
	f.HeartRate = 60
	msg, _ = Encode(nil, []Frame{f})
	copy(msg[len(msg)-4:], []byte{0, 0, 0, 0}) // heart-rate block present but zero
	_, rejects, _ = Decode(msg, nil)
	if !reflect.DeepEqual(rejects, []Reject{{0, ReasonHeartRate}}) {
		t.Errorf("Decode(zero heart rate block) rejects = %v, want one %q", rejects, ReasonHeartRate)
	}
}
