package realmtest

import (
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/clients/vr"
)

// VRFrame carries a synthetic frame into the SDK's frame type: the SDK
// shares the wire format with the realm, not its types.
func VRFrame(f biometrics.Frame) vr.Frame {
	pose := func(p biometrics.Pose) vr.Pose { return vr.Pose{Pos: p.Pos, Rot: p.Rot, Tracked: p.Tracked} }
	out := vr.Frame{TimeUS: f.TimeUS, Seq: f.Seq, Head: pose(f.Head), Left: pose(f.Left), Right: pose(f.Right), HeartRate: f.HeartRate}
	if f.Gaze != nil {
		out.Gaze = &vr.Gaze{Dir: f.Gaze.Dir, PupilMM: f.Gaze.PupilMM}
	}
	return out
}

// FrameSender takes frame messages: a *vr.Client, or a Recorder in front
// of one.
type FrameSender interface {
	Send(frames []vr.Frame) error
}

// Wearer streams motion at 72 Hz, four frames to a message: one synthetic
// person's until told to hand the headset to another person, or a
// recording's until it ends. Every tick sends the frames due by the wall
// clock, so the device clock keeps pace with real time on a busy machine.
type Wearer struct {
	to FrameSender
	// next is the following frame, false once the motion has ended.
	next      func() (vr.Frame, bool)
	gen       *synth.Generator // nil for a recording
	seq       uint32
	start     time.Time
	generated int64
	stop      chan struct{}
	done      chan struct{}
}

// WearerHz is the rate of a wearer's frames.
const WearerHz = 72

// Wear starts streaming person seed's motion through to.
func Wear(to FrameSender, seed int64) *Wearer { return WearSession(to, seed, 0) }

// WearSession starts streaming session n of person seed through to: the
// same person as Wear's on another day, moving afresh.
func WearSession(to FrameSender, seed int64, n int) *Wearer {
	return wearGenerator(to, synth.NewPerson(seed).Session(n), 0, time.Now(), 0)
}

func wearGenerator(to FrameSender, gen *synth.Generator, seq uint32, start time.Time, generated int64) *Wearer {
	w := &Wearer{to: to, gen: gen, seq: seq, start: start, generated: generated, stop: make(chan struct{}), done: make(chan struct{})}
	w.next = func() (vr.Frame, bool) {
		f := VRFrame(w.gen.Next(time.Second / WearerHz))
		f.Seq = w.seq
		w.seq++
		return f, true
	}
	go w.run()
	return w
}

// Replay streams recorded frames through to at the pace of the wearer that
// recorded them, as an attacker who captured them would: verbatim, but
// with their device times moved on by shift, so that they read as the
// present on the recording device's clock. Ended is closed once the last
// frame is sent.
func Replay(to FrameSender, frames []vr.Frame, shift time.Duration) *Wearer {
	w := &Wearer{to: to, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	us := uint64(shift.Microseconds())
	w.next = func() (vr.Frame, bool) {
		if len(frames) == 0 {
			return vr.Frame{}, false
		}
		f := frames[0]
		frames = frames[1:]
		f.TimeUS += us
		return f, true
	}
	go w.run()
	return w
}

func (w *Wearer) run() {
	defer close(w.done)
	dt := time.Second / WearerHz
	tick := time.NewTicker(4 * dt)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		due := int64(time.Since(w.start).Seconds()*WearerHz) - w.generated
		for due > 0 {
			frames := make([]vr.Frame, 0, min(due, vr.MaxFramesPerMessage))
			for len(frames) < cap(frames) {
				f, ok := w.next()
				if !ok {
					break
				}
				frames = append(frames, f)
			}
			if len(frames) == 0 || w.to.Send(frames) != nil {
				return
			}
			due -= int64(len(frames))
			w.generated += int64(len(frames))
		}
	}
}

// HandOver stops this wearer and gives the headset, with its clock and
// frame counter, to person seed. A recording cannot be handed over.
func (w *Wearer) HandOver(seed int64) *Wearer {
	if w.gen == nil {
		panic("realmtest: HandOver of a replayed recording")
	}
	w.TakeOff()
	gen := synth.NewPerson(seed).Session(0)
	gen.SetTime(w.gen.TimeUS(), w.seq)
	return wearGenerator(w.to, gen, w.seq, w.start, w.generated)
}

// Ended is closed when the wearer stops sending: its recording ran out,
// the connection failed, or it was taken off.
func (w *Wearer) Ended() <-chan struct{} { return w.done }

// TakeOff stops the wearer.
func (w *Wearer) TakeOff() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Recorder sends frame messages through to and keeps a copy of every frame
// it sent: the recording an attacker who captured the stream would hold.
type Recorder struct {
	to FrameSender

	mu    sync.Mutex
	began time.Time
	sent  []vr.Frame
}

// Record records what is sent through to.
func Record(to FrameSender) *Recorder { return &Recorder{to: to} }

// Send sends frames through to and, when that succeeds, records them.
func (r *Recorder) Send(frames []vr.Frame) error {
	if err := r.to.Send(frames); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.began.IsZero() {
		r.began = time.Now()
	}
	r.sent = append(r.sent, frames...)
	return nil
}

// Frames is a copy of the frames sent so far, in order, and how long ago
// the first of them was sent: the shift that re-times a replay of them to
// now.
func (r *Recorder) Frames() ([]vr.Frame, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]vr.Frame(nil), r.sent...), time.Since(r.began)
}

// Enrollment states, as xr.status messages and the template API name
// them (clients/PROTOCOL.md).
const (
	EnrollmentNone       = "not-enrolled"
	EnrollmentUnknown    = "unknown"
	EnrollmentCollecting = "enrolling"
	EnrollmentDone       = "enrolled"
)
