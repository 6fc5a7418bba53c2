package biometrics

import "time"

// sample is one resampled instant. Frames arrive with jitter and gaps;
// features need evenly spaced samples, so the stream interpolates onto a
// fixed grid and keeps only that grid.
type sample struct {
	timeUS      uint64
	head        Pose
	left, right Pose
	gaze        Gaze
	heartRate   float32
	hasGaze     bool
	// segStart marks the first sample after a gap: windows may span gaps
	// (they measure motion, not wall time), but nothing is differentiated
	// across one. It sits beside hasGaze, where the padding after it was:
	// 128 bytes a sample instead of 136, in every stream's window.
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
	out    []sample
}

// push feeds one frame (strictly later than the previous one) and returns
// the samples it completes, the first of a new segment marked when a gap
// ended the previous one. The samples live in a buffer of the resampler's
// that the next push reuses: a stream resamples 50 times a second, and a
// sample made on the heap for each was the stream's one allocation per
// frame.
func (r *resampler) push(f *Frame) []sample {
	r.out = r.out[:0]
	if !r.have || f.TimeUS-r.prev.TimeUS > r.maxGap {
		r.prev, r.have = *f, true
		r.next = f.TimeUS + r.step
		s := sample{timeUS: f.TimeUS, head: f.Head, left: f.Left, right: f.Right, heartRate: f.HeartRate, segStart: true}
		if f.Gaze != nil {
			s.gaze, s.hasGaze = *f.Gaze, true
		}
		r.out = append(r.out, s)
		return r.out
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
		r.out = append(r.out, s)
		r.next += r.step
	}
	r.prev = *f
	return r.out
}

// ring keeps the most recent samples of one stream. Its capacity is fixed
// at creation, so a stream's memory does not grow with its age.
type ring struct {
	buf   []sample
	start int // index of the oldest
	n     int
}

func newRing(capacity int) *ring { return &ring{buf: make([]sample, capacity)} }

func (r *ring) push(s *sample) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = *s
		r.n++
		return
	}
	r.buf[r.start] = *s
	r.start = (r.start + 1) % len(r.buf)
}

// last copies the newest k samples, oldest first, into dst.
func (r *ring) last(k int, dst []sample) []sample {
	dst = dst[:0]
	for i := r.n - k; i < r.n; i++ {
		dst = append(dst, r.buf[(r.start+i)%len(r.buf)])
	}
	return dst
}

// windower cuts a stream of samples into overlapping windows: every hop
// samples, once a segment holds size samples, the newest size of them.
type windower struct {
	ring       *ring
	size, hop  int
	sinceEmit  int
	segmentLen int
}

// newWindower keeps exactly one window of samples: nothing reads further
// back (the liveness checks keep their own, sparser history), and at 50 Hz
// each second kept is about 7 KiB per stream.
func newWindower(size, hop int) *windower {
	return &windower{ring: newRing(size), size: size, hop: hop}
}

// add stores s and reports whether it completes a window; window then
// reads it.
func (w *windower) add(s *sample) bool {
	w.ring.push(s)
	w.segmentLen++
	w.sinceEmit++
	if w.segmentLen < w.size || w.sinceEmit < w.hop {
		return false
	}
	w.sinceEmit = 0
	return true
}

// window copies the newest window, oldest sample first, into dst.
func (w *windower) window(dst []sample) []sample { return w.ring.last(w.size, dst) }

// Windows runs frames through the same resampling and windowing as a live
// stream and returns each window's features: for evaluation and offline
// enrollment. frames must be one recording; non-monotonic and invalid
// frames are skipped as a stream would skip them.
func Windows(frames []Frame, cfg Config) ([]Features, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var out []Features
	ex := newExtractor(cfg)
	eachWindow(frames, cfg, func(win []sample) {
		if ft, ok := ex.extract(win); ok {
			out = append(out, ft)
		}
	})
	return out, nil
}

// eachWindow cuts frames into the windows a live stream would see, with
// cfg's defaults already applied, and calls fn with each; fn may keep the
// samples only until it returns.
func eachWindow(frames []Frame, cfg Config, fn func(win []sample)) {
	step := uint64(time.Second/time.Microsecond) / uint64(cfg.SampleRate)
	rs := resampler{step: step, maxGap: uint64(cfg.MaxGap / time.Microsecond)}
	w := newWindower(cfg.windowSamples(), cfg.hopSamples())
	var win []sample
	var last uint64
	for i := range frames {
		f := &frames[i]
		if ValidateFrame(f) != "" || !f.Head.Tracked || (i > 0 && f.TimeUS <= last) {
			continue
		}
		last = f.TimeUS
		for _, smp := range rs.push(f) {
			if w.add(&smp) {
				win = w.window(win)
				fn(win)
			}
		}
	}
}
