package evaluation

import (
	"strconv"

	"github.com/zerorealm/zerorealm/biometrics/synth"
)

// SyntheticRecordings makes n synthetic people (seeds from seed on), each
// with an enrollment session and a probe session (another day, with its
// drift) of the given length at 72 Hz.
func SyntheticRecordings(n int, seed int64, seconds float64) []Recording {
	out := make([]Recording, n)
	frames := int(seconds * 72)
	for i := range out {
		p := synth.NewPerson(seed + int64(i))
		out[i] = Recording{
			ID:     "synthetic-" + strconv.FormatInt(seed+int64(i), 10),
			Enroll: p.Session(1).Frames(frames, 72),
			Probe:  p.Session(2).Frames(frames, 72),
		}
	}
	return out
}
