package biometrics

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// datasetDir is where the real recordings sit beside the repository.
const datasetDir = "../../shared/datasets/xr-archery"

// realSampleMessages encodes the first frames of a real recording, when the
// recordings are present, as fuzz seeds. Nothing derived from them is kept.
func realSampleMessages(tb testing.TB) [][]byte {
	file, err := os.Open(filepath.Join(datasetDir, "p01_s1.csv.gz"))
	if err != nil {
		tb.Logf("real recordings absent (%v): fuzz seeds are synthetic only", err)
		return nil
	}
	defer file.Close()
	zr, err := gzip.NewReader(file)
	if err != nil {
		tb.Fatal(err)
	}
	r := csv.NewReader(bufio.NewReader(zr))
	if _, err := r.Read(); err != nil {
		tb.Fatal(err)
	}
	var frames []Frame
	for i := 0; i < 96; i++ {
		rec, err := r.Read()
		if err != nil {
			break
		}
		num := func(col int) float32 { v, _ := strconv.ParseFloat(rec[col], 32); return float32(v) }
		ms, _ := strconv.ParseUint(rec[3], 10, 64)
		f := Frame{TimeUS: ms*1000 + 1, Seq: uint32(i)}
		for j, p := range []*Pose{&f.Head, &f.Left, &f.Right} {
			base := 5 + j*10
			// Unity left-handed to OpenXR right-handed: negate z, qx, qy.
			p.Pos = [3]float32{num(base), num(base + 1), -num(base + 2)}
			p.Rot = [4]float32{-num(base + 6), -num(base + 7), num(base + 8), num(base + 9)}
			p.Tracked = true
		}
		frames = append(frames, f)
	}
	var msgs [][]byte
	for len(frames) > 0 {
		n := min(len(frames), MaxFramesPerMessage)
		msg, err := Encode(nil, frames[:n])
		if err != nil {
			tb.Fatal(err)
		}
		msgs = append(msgs, msg)
		frames = frames[n:]
	}
	return msgs
}
