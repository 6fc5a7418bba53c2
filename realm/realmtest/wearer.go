package realmtest

import (
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

// Wearer streams one synthetic person's motion at 72 Hz, four frames to a
// message, until told to hand the headset to another person. Every tick
// sends the frames due by the wall clock, so the device clock keeps pace
// with real time on a busy machine.
type Wearer struct {
	cl        *vr.Client
	gen       *synth.Generator
	seq       uint32
	start     time.Time
	generated int64
	stop      chan struct{}
	done      chan struct{}
}

// WearerHz is the rate of a wearer's frames.
const WearerHz = 72

// Wear starts streaming person seed's motion through cl.
func Wear(cl *vr.Client, seed int64) *Wearer {
	w := &Wearer{cl: cl, gen: synth.NewPerson(seed).Session(0), start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
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
			frames := make([]vr.Frame, min(due, vr.MaxFramesPerMessage))
			for i := range frames {
				frames[i] = VRFrame(w.gen.Next(dt))
				frames[i].Seq = w.seq
				w.seq++
			}
			if w.cl.Send(frames) != nil {
				return
			}
			due -= int64(len(frames))
			w.generated += int64(len(frames))
		}
	}
}

// HandOver stops this wearer and gives the headset, with its clock and
// frame counter, to person seed.
func (w *Wearer) HandOver(seed int64) *Wearer {
	close(w.stop)
	<-w.done
	next := &Wearer{cl: w.cl, gen: synth.NewPerson(seed).Session(0), seq: w.seq, start: w.start, generated: w.generated,
		stop: make(chan struct{}), done: make(chan struct{})}
	next.gen.SetTime(w.gen.TimeUS(), w.seq)
	go next.run()
	return next
}

// TakeOff stops the wearer.
func (w *Wearer) TakeOff() {
	close(w.stop)
	<-w.done
}

// Enrollment states, as xr.status messages and the template API name
// them (clients/PROTOCOL.md).
const (
	EnrollmentNone       = "not-enrolled"
	EnrollmentCollecting = "enrolling"
	EnrollmentDone       = "enrolled"
)
