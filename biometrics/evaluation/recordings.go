package evaluation

import (
	"fmt"
	"sort"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/xrarchery"
)

// Recording is one person's two sessions as continuous streams.
type Recording struct {
	ID            string
	Enroll, Probe []biometrics.Frame
}

// ReadRecordings reads the xr-archery recordings in dir. Each session's
// repetitions are joined into one stream with a one-second gap between
// them, as a headset that paused between shots would send: windows then
// measure seconds of motion, and nothing is differentiated across a gap.
func ReadRecordings(dir string) ([]Recording, error) {
	sessions, err := xrarchery.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	users := make([]string, 0, len(sessions))
	for u := range sessions {
		users = append(users, u)
	}
	sort.Strings(users)
	var out []Recording
	for _, u := range users {
		ss := sessions[u]
		if len(ss) < 2 {
			continue
		}
		out = append(out, Recording{ID: u, Enroll: join(ss[0]), Probe: join(ss[1])})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("evaluation: no user with two sessions in %s", dir)
	}
	return out, nil
}

func join(s *xrarchery.Session) []biometrics.Frame {
	var out []biometrics.Frame
	var offset uint64
	for _, rep := range s.Repetitions {
		if len(rep.Frames) == 0 {
			continue
		}
		start := rep.Frames[0].TimeUS
		for _, f := range rep.Frames {
			f.TimeUS = f.TimeUS - start + offset
			out = append(out, f)
		}
		offset = out[len(out)-1].TimeUS + 1_000_000
	}
	return out
}

// Featurize turns recordings into people: enrollment windows with the
// enrollment config, probe windows with the probe config.
func Featurize(recs []Recording, enroll, probe biometrics.Config) ([]Person, error) {
	var people []Person
	for _, r := range recs {
		e, err := biometrics.Windows(r.Enroll, enroll)
		if err != nil {
			return nil, err
		}
		p, err := biometrics.Windows(r.Probe, probe)
		if err != nil {
			return nil, err
		}
		if len(e) < 2 || len(p) < 1 {
			return nil, fmt.Errorf("evaluation: %s has too little motion (%d enrollment, %d probe windows)", r.ID, len(e), len(p))
		}
		people = append(people, Person{ID: r.ID, Enroll: e, Probe: p})
	}
	return people, nil
}
