package xrarchery

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/zerorealm/zerorealm/biometrics"
)

// ErrFormat reports a file that is not in the recordings' CSV format.
var ErrFormat = errors.New("xrarchery: bad recording")

// Repetition is one shot: a contiguous stretch of motion. Repetitions are
// not contiguous with each other.
type Repetition struct {
	Number int
	Frames []biometrics.Frame
}

// Session is one person's recording on one day.
type Session struct {
	User        string
	Session     int
	Repetitions []Repetition
}

// Duration is the motion the session holds, summed over repetitions.
func (s *Session) Duration() float64 {
	var us uint64
	for _, r := range s.Repetitions {
		if n := len(r.Frames); n > 1 {
			us += r.Frames[n-1].TimeUS - r.Frames[0].TimeUS
		}
	}
	return float64(us) / 1e6
}

// columns the reader needs, by name.
var columns = []string{"user", "session", "repetition", "t_ms",
	"head_pos_x", "head_pos_y", "head_pos_z", "head_qx", "head_qy", "head_qz", "head_qw",
	"left_pos_x", "left_pos_y", "left_pos_z", "left_qx", "left_qy", "left_qz", "left_qw",
	"right_pos_x", "right_pos_y", "right_pos_z", "right_qx", "right_qy", "right_qz", "right_qw"}

// Read parses one gzip CSV recording. Rows are converted from Unity's
// left-handed frame to OpenXR's right-handed one (negate z, qx, qy). Rows
// that repeat the previous timestamp are dropped, as a stream would drop
// them.
func Read(r io.Reader) (*Session, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	cr := csv.NewReader(bufio.NewReader(zr))
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrFormat, err)
	}
	idx := make([]int, len(columns))
	for i, name := range columns {
		idx[i] = -1
		for j, h := range header {
			if strings.EqualFold(strings.TrimSpace(h), name) {
				idx[i] = j
			}
		}
		if idx[i] < 0 {
			return nil, fmt.Errorf("%w: no column %q", ErrFormat, name)
		}
	}
	s := &Session{}
	var cur *Repetition
	var seq uint32
	vals := make([]float64, len(columns))
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrFormat, line, err)
		}
		for i := 1; i < len(columns); i++ {
			v, err := strconv.ParseFloat(rec[idx[i]], 64)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d column %s: %w", ErrFormat, line, columns[i], err)
			}
			vals[i] = v
		}
		if s.User == "" {
			s.User, s.Session = rec[idx[0]], int(vals[1])
		}
		if !(vals[3] >= 0 && vals[3] < 1e12) {
			return nil, fmt.Errorf("%w: line %d: t_ms %v out of range", ErrFormat, line, vals[3])
		}
		rep := int(vals[2])
		if cur == nil || cur.Number != rep {
			s.Repetitions = append(s.Repetitions, Repetition{Number: rep})
			cur = &s.Repetitions[len(s.Repetitions)-1]
		}
		f := biometrics.Frame{TimeUS: uint64(vals[3]*1000) + 1, Seq: seq}
		seq++
		for j, p := range []*biometrics.Pose{&f.Head, &f.Left, &f.Right} {
			b := 4 + 7*j
			p.Pos = [3]float32{float32(vals[b]), float32(vals[b+1]), -float32(vals[b+2])}
			p.Rot = [4]float32{-float32(vals[b+3]), -float32(vals[b+4]), float32(vals[b+5]), float32(vals[b+6])}
			p.Tracked = true
		}
		if n := len(cur.Frames); n > 0 && cur.Frames[n-1].TimeUS >= f.TimeUS {
			continue
		}
		cur.Frames = append(cur.Frames, f)
	}
	if s.User == "" {
		return nil, fmt.Errorf("%w: no rows", ErrFormat)
	}
	return s, nil
}

// ReadDir reads every pUU_sS.csv.gz in dir, keyed by user, sessions in
// order.
func ReadDir(dir string) (map[string][]*Session, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "p*_s*.csv.gz"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("xrarchery: no recordings in %s: %w", dir, os.ErrNotExist)
	}
	sort.Strings(paths)
	out := map[string][]*Session{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		s, err := Read(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(p), err)
		}
		out[s.User] = append(out[s.User], s)
	}
	for _, ss := range out {
		sort.Slice(ss, func(i, j int) bool { return ss[i].Session < ss[j].Session })
	}
	return out, nil
}
