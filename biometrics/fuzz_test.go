package biometrics

import (
	"testing"
)

// FuzzDecode feeds the decoder arbitrary bytes: it must never panic, must
// leave dst alone on error, and every frame it returns must be valid and
// re-encode to a message that decodes to the same frames.
func FuzzDecode(f *testing.F) {
	seeds := [][]Frame{
		nil,
		{sampleFrame(1000, 1)},
		{sampleFrame(1000, 1), sampleFrame(14000, 2)},
	}
	g := sampleFrame(3000, 3)
	g.Gaze = &Gaze{Dir: [3]float32{0, 0, -1}, PupilMM: 3}
	g.HeartRate = 70
	seeds = append(seeds, []Frame{g})
	for _, fr := range seeds {
		msg, err := Encode(nil, fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
	}
	for _, msg := range realSampleMessages(f) {
		f.Add(msg)
	}
	f.Add([]byte{1, 32, 0, 0})
	f.Add([]byte{2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, msg []byte) {
		sentinel := sampleFrame(7, 7)
		frames, rejects, err := Decode(msg, []Frame{sentinel})
		if err != nil {
			if len(frames) != 1 || len(rejects) != 0 {
				t.Fatalf("Decode error %v but returned %d frames, %d rejects", err, len(frames), len(rejects))
			}
			return
		}
		got := frames[1:]
		if len(got)+len(rejects) != int(msg[1]) {
			t.Fatalf("Decode: %d frames + %d rejects, message says %d", len(got), len(rejects), msg[1])
		}
		for i := range got {
			if r := ValidateFrame(&got[i]); r != "" {
				t.Fatalf("Decode returned invalid frame %d: %s", i, r)
			}
			if i > 0 && got[i].TimeUS <= got[i-1].TimeUS {
				t.Fatalf("Decode returned non-monotonic frames %d", i)
			}
		}
		again, err := Encode(nil, got)
		if err != nil {
			t.Fatal(err)
		}
		back, rej2, err := Decode(again, nil)
		if err != nil || len(rej2) != 0 || len(back) != len(got) {
			t.Fatalf("re-decode = %d frames, %v, %v; want %d, none, nil", len(back), rej2, err, len(got))
		}
	})
}

// FuzzPathBatchUnmarshal feeds the path batch decoder arbitrary bytes: it
// must never panic, must leave the batch alone on error, and what it
// accepts must encode back to the same bytes.
func FuzzPathBatchUnmarshal(f *testing.F) {
	good, err := PathBatch{entries: []pathEntry{{1, 2, 3}, {1, 3, 1 << 63}}}.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{pathBatchVersion, 0, 0, 0, 0})
	f.Add([]byte{pathBatchVersion, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, data []byte) {
		sentinel := []pathEntry{{7, 7, 7}}
		b := PathBatch{entries: sentinel}
		if err := b.UnmarshalBinary(data); err != nil {
			if len(b.entries) != 1 || b.entries[0] != sentinel[0] {
				t.Fatalf("UnmarshalBinary error %v changed the batch", err)
			}
			return
		}
		again, err := b.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if string(again) != string(data) {
			t.Fatalf("re-encoded %x, want %x", again, data)
		}
	})
}

// FuzzDecodeEnrollment feeds the enrollment decoder arbitrary bytes: it
// must never panic, and what it accepts is an enrollment a stream can
// resume (finite features, no more windows than it wants) that encodes
// back to the same bytes.
func FuzzDecodeEnrollment(f *testing.F) {
	core := make([]float64, NumCoreFeatures)
	for i := range core {
		core[i] = float64(i) / 7
	}
	for _, en := range []*Enrollment{
		{avatarID: "ada", want: 20, windows: []Features{{StartUS: 1, EndUS: 2_000_001, Core: core}}},
		{avatarID: "ada", want: 2, windows: []Features{
			{StartUS: 1, EndUS: 2, Core: core, Gaze: []float64{0.1, 0.2, 0.3, 0.4, 3, 0.5}, Heart: []float64{70, 2}},
			{StartUS: 3, EndUS: 4, Core: core},
		}},
	} {
		b, err := en.AppendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{enrollmentVersion, NumCoreFeatures, 0, 2, 0, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		en, err := DecodeEnrollment("ada", b)
		if err != nil {
			return
		}
		if en.Collected() == 0 || en.Collected() > en.Want() || en.Want() > maxEnrollmentWant {
			t.Fatalf("decoded %d of %d windows", en.Collected(), en.Want())
		}
		for i, w := range en.windows {
			if len(w.Core) != NumCoreFeatures || !allFinite(w.Core) || !allFinite(w.Gaze) || !allFinite(w.Heart) {
				t.Fatalf("window %d is not a window's statistics", i)
			}
		}
		again, err := en.AppendBinary(nil)
		if err != nil || string(again) != string(b) {
			t.Fatalf("re-encoding = %d bytes, %v; want the %d decoded", len(again), err, len(b))
		}
	})
}
