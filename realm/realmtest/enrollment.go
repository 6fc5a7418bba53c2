package realmtest

import (
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/clients/vr"
)

// EnrollmentWatch collects a headset's xr.status messages, for a test
// that follows its enrollment across connections: give OnStatus to every
// vr.Config the headset dials with.
type EnrollmentWatch struct{ statuses chan vr.Status }

// NewEnrollmentWatch starts a watch that keeps the newest 256 statuses.
func NewEnrollmentWatch() *EnrollmentWatch {
	return &EnrollmentWatch{statuses: make(chan vr.Status, 256)}
}

// OnStatus is the vr.Config.OnStatus that feeds the watch.
func (w *EnrollmentWatch) OnStatus(s vr.Status) {
	select {
	case w.statuses <- s:
	default:
	}
}

// Forget drops the statuses received so far: the next Wait sees only
// those that come after.
func (w *EnrollmentWatch) Forget() {
	for len(w.statuses) > 0 {
		<-w.statuses
	}
}

// Wait returns the first status whose enrollment is done, or whose
// progress ok accepts, failing the test after 30 s.
func (w *EnrollmentWatch) Wait(t testing.TB, what string, ok func(progress float64) bool) vr.Status {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case s := <-w.statuses:
			if s.Enrollment == EnrollmentDone || s.EnrollmentProgress != nil && ok(*s.EnrollmentProgress) {
				return s
			}
		case <-deadline:
			t.Fatalf("%s: not within 30 s", what)
		}
	}
}
