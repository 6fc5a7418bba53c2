package vr

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// frameVector is one case of testdata/frames.json: frames as a client
// holds them and the exact bytes of their message. The TypeScript SDK
// (clients/js) checks its encoder against the same file, so the two SDKs
// and clients/PROTOCOL.md agree byte for byte.
type frameVector struct {
	Name   string `json:"name"`
	Frames []struct {
		TimeUS uint64 `json:"time_us,string"`
		Seq    uint32 `json:"seq"`
		Head   *Pose  `json:"head"`
		Left   *Pose  `json:"left"`
		Right  *Pose  `json:"right"`
		Gaze   *struct {
			Dir     [3]float32 `json:"dir"`
			PupilMM float32    `json:"pupil_mm"`
		} `json:"gaze"`
		HeartRate float32 `json:"heart_rate"`
	} `json:"frames"`
	Hex string `json:"hex"`
}

func TestAppendMessageVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/frames.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []frameVector
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) == 0 {
		t.Fatal("no vectors in testdata/frames.json")
	}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			frames := make([]Frame, len(v.Frames))
			for i, f := range v.Frames {
				frames[i] = Frame{TimeUS: f.TimeUS, Seq: f.Seq, HeartRate: f.HeartRate}
				for _, p := range []struct {
					from *Pose
					to   *Pose
				}{{f.Head, &frames[i].Head}, {f.Left, &frames[i].Left}, {f.Right, &frames[i].Right}} {
					if p.from != nil {
						*p.to = *p.from
					}
				}
				if f.Gaze != nil {
					frames[i].Gaze = &Gaze{Dir: f.Gaze.Dir, PupilMM: f.Gaze.PupilMM}
				}
			}
			msg, err := AppendMessage(nil, frames)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(msg); got != v.Hex {
				t.Errorf("AppendMessage(%s) =\n%s\nwant\n%s", v.Name, got, v.Hex)
			}
		})
	}
}
