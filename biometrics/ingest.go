package biometrics

import (
	"slices"
	"time"
)

// sample is one resampled instant. Frames arrive with jitter and gaps;
// features need evenly spaced samples, so the stream interpolates onto a
// fixed grid and keeps only that grid.
type sample struct {
	timeUS      uint64
	head        Pose
	left, right Pose
	gaze        Gaze
	hasGaze     bool
	heartRate   float32
	// segStart marks the first sample after a gap: windows may span gaps
	// (they measure motion, not wall time), but nothing is differentiated
	// across one.
	segStart bool
}

// resampler turns frames at any rate into samples every step, linearly
// interpolated. A gap longer than maxGap starts a new segment: nothing is
// invented across it, and windows never span it.
type resampler struct {
	step   uint64 // microseconds
	maxGap uint64
	prev   Frame
	have   bool
	next   uint64 // time of the next sample to emit
}

// push feeds one frame (strictly later than the previous one) and calls emit
// for each sample it completes; broke is called first when a gap ends the
// current segment.
func (r *resampler) push(f *Frame, emit func(*sample), broke func()) {
	if !r.have || f.TimeUS-r.prev.TimeUS > r.maxGap {
		if r.have {
			broke()
		}
		r.prev, r.have = *f, true
		r.next = f.TimeUS
		s := sampleOf(f)
		s.segStart = true
		emit(s)
		r.next += r.step
		return
	}
	for r.next <= f.TimeUS {
		t := float32(float64(r.next-r.prev.TimeUS) / float64(f.TimeUS-r.prev.TimeUS))
		s := sample{
			timeUS: r.next,
			head:   lerpPose(&r.prev.Head, &f.Head, t),
			left:   lerpPose(&r.prev.Left, &f.Left, t),
			right:  lerpPose(&r.prev.Right, &f.Right, t),
		}
		src := f
		if t < 0.5 {
			src = &r.prev
		}
		if src.Gaze != nil {
			s.gaze, s.hasGaze = *src.Gaze, true
		}
		s.heartRate = src.HeartRate
		emit(&s)
		r.next += r.step
	}
	r.prev = *f
}

func sampleOf(f *Frame) *sample {
	s := &sample{timeUS: f.TimeUS, head: f.Head, left: f.Left, right: f.Right, heartRate: f.HeartRate}
	if f.Gaze != nil {
		s.gaze, s.hasGaze = *f.Gaze, true
	}
	return s
}

// windower cuts a stream of samples into overlapping windows: every hop
// samples, once a segment holds size samples, the newest size of them. It
// keeps exactly one window of samples, as a ring that is put in order in
// place when a window is due: nothing older is ever read, and a copy of
// the window per stream would cost as much again as the ring.
type windower struct {
	buf        []sample // len size; buf[next] is the oldest once full
	next       int
	size, hop  int
	sinceEmit  int
	segmentLen int
}

func newWindower(size, hop int) *windower {
	return &windower{buf: make([]sample, size), size: size, hop: hop}
}

// add stores s and returns the window it completes, if any, oldest sample
// first. The returned slice is the windower's own: it is valid until the
// next call.
func (w *windower) add(s *sample) []sample {
	w.buf[w.next] = *s
	w.next = (w.next + 1) % w.size
	w.segmentLen++
	w.sinceEmit++
	if w.segmentLen < w.size || w.sinceEmit < w.hop {
		return nil
	}
	w.sinceEmit = 0
	// Rotate the oldest sample to the front by three reversals, so the
	// ring is the window.
	slices.Reverse(w.buf[:w.next])
	slices.Reverse(w.buf[w.next:])
	slices.Reverse(w.buf)
	w.next = 0
	return w.buf
}

// Windows runs frames through the same resampling and windowing as a live
// stream and returns each window's features: for evaluation and offline
// enrollment. frames must be one recording; non-monotonic and invalid
// frames are skipped as a stream would skip them.
func Windows(frames []Frame, cfg Config) ([]Features, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	step := uint64(time.Second/time.Microsecond) / uint64(cfg.SampleRate)
	rs := resampler{step: step, maxGap: uint64(cfg.MaxGap / time.Microsecond)}
	w := newWindower(cfg.windowSamples(), cfg.hopSamples())
	var out []Features
	var last uint64
	ex := newExtractor(cfg)
	for i := range frames {
		f := &frames[i]
		if ValidateFrame(f) != "" || !f.Head.Tracked || (i > 0 && f.TimeUS <= last) {
			continue
		}
		last = f.TimeUS
		rs.push(f, func(s *sample) {
			if win := w.add(s); win != nil {
				if ft, ok := ex.extract(win); ok {
					out = append(out, ft)
				}
			}
		}, func() {})
	}
	return out, nil
}
