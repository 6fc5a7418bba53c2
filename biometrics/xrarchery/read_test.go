package xrarchery

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
)

const header = "user,session,repetition,t_ms,phase,head_pos_x,head_pos_y,head_pos_z,head_euler_x,head_euler_y,head_euler_z,head_qx,head_qy,head_qz,head_qw,left_pos_x,left_pos_y,left_pos_z,left_euler_x,left_euler_y,left_euler_z,left_qx,left_qy,left_qz,left_qw,right_pos_x,right_pos_y,right_pos_z,right_euler_x,right_euler_y,right_euler_z,right_qx,right_qy,right_qz,right_qw\n"

// row is a made-up sample in the recordings' layout (not from them).
func row(rep, ms int) string {
	return "07,2," + itoa(rep) + "," + itoa(ms) + ",0,1.0,1.7,2.0,0,0,0,0.1,0.2,0.0,0.9747,0.8,1.2,2.3,0,0,0,0,0,0,1,1.2,1.2,2.3,0,0,0,0,0,0,1\n"
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	s := ""
	for v > 0 {
		s = string(rune('0'+v%10)) + s
		v /= 10
	}
	return s
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestRead(t *testing.T) {
	csv := header + row(1, 0) + row(1, 14) + row(1, 14) + row(1, 30) + row(2, 0) + row(2, 13)
	s, err := Read(bytes.NewReader(gz(csv)))
	if err != nil {
		t.Fatal(err)
	}
	if s.User != "07" || s.Session != 2 || len(s.Repetitions) != 2 {
		t.Fatalf("Read = user %q session %d, %d repetitions; want 07, 2, 2", s.User, s.Session, len(s.Repetitions))
	}
	if n := len(s.Repetitions[0].Frames); n != 3 {
		t.Errorf("repetition 1 has %d frames, want 3 (the repeated timestamp dropped)", n)
	}
	f := s.Repetitions[0].Frames[0]
	// Unity to OpenXR: z, qx and qy negated.
	if f.Head.Pos[2] != -2 || f.Head.Rot[0] != -0.1 || f.Head.Rot[1] != -0.2 || f.Head.Rot[3] != 0.9747 {
		t.Errorf("head pose = %+v, want z and qx, qy negated", f.Head)
	}
}

func TestReadRejects(t *testing.T) {
	tests := map[string][]byte{
		"not gzip":       []byte(header),
		"missing column": gz(strings.Replace(header, "head_qw", "head_qq", 1) + row(1, 0)),
		"bad number":     gz(header + strings.Replace(row(1, 0), "1.7", "x", 1)),
		"no rows":        gz(header),
		"short row":      gz(header + "07,2,1\n"),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Read(bytes.NewReader(b)); !errors.Is(err, ErrFormat) {
				t.Errorf("Read error = %v, want %v", err, ErrFormat)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	f.Add(gz(header + row(1, 0) + row(1, 14)))
	f.Add(gz(header))
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, r := range s.Repetitions {
			for i := 1; i < len(r.Frames); i++ {
				if r.Frames[i].TimeUS <= r.Frames[i-1].TimeUS {
					t.Fatalf("frames not strictly increasing in time")
				}
			}
		}
	})
}
