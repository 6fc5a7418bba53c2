package xr

import (
	"fmt"
)

// A node short of CPU first thins: each stream it trusts and is sure of
// is judged every other window (biometrics.Engine.SetThinning), which
// keeps every sample judged and filed for replays and costs about a
// fifth of a streaming node's CPU less. Only then does it refuse new
// streams (Config.CPUReserve), and, once behind its sockets, shed open
// ones. Thinning is the cheapest of the three to the people streaming: a
// change of wearer is seen up to two hops later, and nobody is turned away.

// thinSavesShare is how much of the node's CPU thinning is taken to save,
// as a share of what the node uses while it thins: the windows take about
// two-fifths of a streaming node's CPU, their replay lookups (which
// thinning does not save) about a third of that, and thinning halves the
// rest; the score messages it halves too. A node stops thinning only when
// its spare CPU, less that, would still be over the line, so that
// stopping does not put it straight back under.
const thinSavesShare = 0.2

// thinner decides when the node thins; whether it thins now is the
// engine's (biometrics.Engine.Thinning). Only cpuMeasure.take uses it.
type thinner struct {
	below float64 // cores: the node thins while its spare CPU is under this; 0 never
}

// ThinBelowProblems says what is wrong with a Config.ThinBelow, for the
// realm's configuration check.
func ThinBelowProblems(below float64) []string {
	if !(below >= 0 && below < 1) {
		return []string{fmt.Sprintf("XR thinning line %v: want a share of the cores from 0 (never) to under 1", below)}
	}
	return nil
}

// decide reports whether the node thins, given whether it thins now, its
// CPU measurement (nil while unmeasured), the cores it used over the
// measurement's window, the streams it holds, and whether it is behind
// them. A node behind its streams thins whatever its CPU reads: something
// is starving it.
func (t *thinner) decide(thinning bool, v *cpuView, processCores float64, open int64, behind bool) bool {
	switch {
	case t.below <= 0:
		return false
	case behind:
		return true
	case v == nil || open < minCPUStreams:
		// Unmeasured, or too few streams to be what fills the machine.
		return false
	case !thinning:
		return v.spare < t.below
	default:
		return v.spare-thinSavesShare*processCores < t.below
	}
}
