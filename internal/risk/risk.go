package risk

import (
	"errors"
	"fmt"
)

// Level grades what a wrong command to an actuator could do. Its value is
// the level's name as every wire spells it. A Level that is none of the
// four constants is unknown: it ranks below every known level and passes
// no comparison, so a caller that forgets to validate still fails closed.
type Level string

// The levels, from least to most dangerous.
const (
	Low      Level = "low"
	Medium   Level = "medium"
	High     Level = "high"
	Critical Level = "critical"
)

// ErrUnknown is returned by [Parse] for a word that is not a level.
var ErrUnknown = errors.New("risk: unknown level")

// Parse returns the level named s, exactly as spelled ("low", "medium",
// "high" or "critical"); any other word, a differently cased one included,
// is refused with [ErrUnknown] and the zero Level.
func Parse(s string) (Level, error) {
	if l := Level(s); l.Known() {
		return l, nil
	}
	return "", fmt.Errorf("%w %.40q (want low, medium, high or critical)", ErrUnknown, s)
}

// Rank orders the levels: 1 for low up to 4 for critical, and 0 for an
// unknown level.
func (l Level) Rank() int {
	switch l {
	case Low:
		return 1
	case Medium:
		return 2
	case High:
		return 3
	case Critical:
		return 4
	}
	return 0
}

// Known reports whether l is one of the four levels.
func (l Level) Known() bool { return l.Rank() > 0 }

// AtLeast reports whether l is as dangerous as floor or more. An unknown l
// is below every level, so it reaches no floor; an unknown floor ranks 0,
// so every known level reaches it.
func (l Level) AtLeast(floor Level) bool {
	return l.Known() && l.Rank() >= floor.Rank()
}

// AtMost reports whether l is no more dangerous than ceiling. An unknown l
// stays under no ceiling (it could be anything), and an unknown ceiling
// ranks 0, so it admits no level.
func (l Level) AtMost(ceiling Level) bool {
	return l.Known() && l.Rank() <= ceiling.Rank()
}
