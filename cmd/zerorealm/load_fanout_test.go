package main

import (
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/clients/vr"
)

func head(x, y, z float32) vr.Pose {
	return vr.Pose{Pos: [3]float32{x, y, z}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true}
}

// nthHead is the head of an avatar's i-th message in TestHeadSentAt.
func nthHead(i int) vr.Pose { return head(float32(i)*0.01, 1.6, -0.5) }

func TestHeadSentAt(t *testing.T) {
	var a loadAvatar
	for i := range headHistory + 10 {
		a.recordHead(nthHead(i), int64(1000+i))
	}
	a.recordHead(vr.Pose{Pos: [3]float32{9, 9, 9}}, 5000) // untracked: not the pose
	cases := []struct {
		name   string
		pose   vr.Pose
		want   int64
		wantOK bool
	}{
		{"newest", nthHead(headHistory + 9), int64(1000 + headHistory + 9), true},
		{"oldest kept", nthHead(10), 1010, true},
		{"overwritten", nthHead(9), 0, false},
		{"never sent", head(0.5, 1.7, -0.5), 0, false},
		{"untracked head", head(9, 9, 9), 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := a.headSentAt(c.pose)
			if got != c.want || ok != c.wantOK {
				t.Errorf("headSentAt(%v) = %d, %v; want %d, %v", c.pose.Pos, got, ok, c.want, c.wantOK)
			}
		})
	}
}

func TestPoseFanoutQuantile(t *testing.T) {
	var f poseFanout
	if d, n := f.quantile(0.5); d != 0 || n != 0 {
		t.Fatalf("quantile(0.5) of nothing = %s, %d; want 0, 0", d, n)
	}
	for i := 1; i <= 100; i++ {
		f.observe(time.Duration(i) * time.Millisecond)
	}
	f.observe(time.Hour) // beyond the histogram: counted in its last bucket
	cases := []struct {
		q    float64
		want time.Duration
	}{
		{0, time.Millisecond},
		{0.5, 51 * time.Millisecond},
		{0.99, 100 * time.Millisecond},
		{1, delayBuckets * time.Millisecond},
	}
	for _, c := range cases {
		if got, n := f.quantile(c.q); got != c.want || n != 101 {
			t.Errorf("quantile(%g) = %s, %d; want %s, 101", c.q, got, n, c.want)
		}
	}
	if got := time.Duration(f.maxNS.Load()); got != time.Hour {
		t.Errorf("max = %s, want 1h", got)
	}
}
