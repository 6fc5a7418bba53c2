package biometrics

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// ErrInvalidConfig is returned by NewEngine (and Windows) for a Config
// field out of range.
var ErrInvalidConfig = errors.New("biometrics: invalid config")

// Defaults of the Config fields left zero.
const (
	DefaultSampleRate      = 50
	DefaultWindow          = 2 * time.Second
	DefaultHop             = time.Second
	DefaultMaxGap          = 250 * time.Millisecond
	DefaultEnrollDuration  = 60 * time.Second
	DefaultGenuineMean     = 1.5
	DefaultWindowLLRLimit  = 3.0
	DefaultEvidenceLimit   = 4.0
	DefaultAdaptRate       = 0.002
	DefaultAdaptAbove      = 0.9
	DefaultMaxCohort       = 64
	DefaultReplayHistory   = 10 * time.Minute
	DefaultReplayTolerance = 0.01
	DefaultReplayMaxPoints = 1 << 20
	DefaultMaxHandSpeed    = 15.0
	DefaultMinTremor       = 2e-5
	DefaultMaxClockDrift   = 0.25
	DefaultPriorAsideFrom  = 40
)

// Config tunes the engine and every stream it creates. Zero values mean the
// defaults written beside each field.
type Config struct {
	// Logger receives operational messages; nil discards them. Raw motion
	// and templates are never logged.
	Logger *slog.Logger

	// SampleRate (default 50 Hz): frames are resampled onto this grid. 50 Hz
	// keeps the 8-12 Hz tremor band below Nyquist and costs less than the
	// headsets' 72-120 Hz.
	SampleRate int
	// Window (default 2s) and Hop (default 1s): features are computed over
	// Window of motion every Hop.
	Window, Hop time.Duration
	// MaxGap (default 250ms): a longer silence between frames is a gap that
	// no window spans; shorter ones are interpolated.
	MaxGap time.Duration

	// EnrollDuration (default 60s): motion collected by StartEnrollment
	// when it is given no duration.
	EnrollDuration time.Duration

	// GenuineMean (default 1.5): the weight g of a window's score s in its
	// log-likelihood ratio g·s − g²/2, as if genuine scores were N(g, 1)
	// and impostors N(0, 1) (cohort normalization puts impostors near 0).
	// Genuine windows score higher on average than 1.5, but their left
	// tail is heavier than a Gaussian's: the smaller weight lets a few poor
	// windows of the right person pull the evidence less, while a new
	// wearer, whose windows score below 0, still empties it within seconds.
	GenuineMean float64
	// WindowLLRLimit (default 3): no single window moves the evidence by
	// more than this, so one odd window cannot decide.
	WindowLLRLimit float64
	// EvidenceLimit (default 4): the accumulated log-likelihood ratio is
	// kept within ±EvidenceLimit, so that long genuine motion cannot build
	// a credit that hides a change of wearer. The match probability thus
	// stays within [0.018, 0.982] at the default.
	EvidenceLimit float64

	// AdaptRate (default 0.002 per window) and AdaptAbove (default 0.9): a
	// trusted stream whose match probability is above AdaptAbove moves its
	// template towards each new window by AdaptRate.
	AdaptRate, AdaptAbove float64

	// MaxCohort (default 64): how many other templates a score is
	// normalized against.
	MaxCohort int

	// ReplayHistory (default 10m): how long motion stays in the node's
	// replay registry. ReplayTolerance (default 0.01 m): how close motion
	// must come to earlier motion to count as a copy of it.
	// ReplayMaxPoints (default 1Mi points: about 120 MiB of fast motion,
	// 119 bytes a point with its cells, BenchmarkReplayRegistryMemory)
	// bounds the registry; on a busy node it, not ReplayHistory, sets how far back
	// the registry remembers (10 points per second of moving hands per
	// avatar: 2,000 avatars fill it in under a minute).
	ReplayHistory   time.Duration
	ReplayTolerance float64
	ReplayMaxPoints int

	// MaxHandSpeed (default 15 m/s): faster hands teleported. MinTremor
	// (default 0.02 mm RMS): steadier hands are not held by a person.
	// MaxClockDrift (default 0.25): the device clock may run this much
	// faster or slower than arrival time over the buffer.
	MaxHandSpeed, MinTremor, MaxClockDrift float64

	// PriorAsideFrom (default 40; negative: never): once this many real
	// people are enrolled, the synthetic prior given to NewEngine leaves
	// the background and the cohort. It only fills a young node's
	// background: on real motion it costs accuracy at every size, but
	// without it a population of 21–25 people gave more than one false
	// step-up per hour of genuine motion, 33 gave 0.6 and 41 gave 0.2
	// (docs/biometrics.md, fourth round).
	PriorAsideFrom int

	// DriftBackground (default off): the background's within-person
	// scatter comes from each person's trusted windows across days
	// (Template.Drift) instead of their enrollment sitting. A realm in
	// service has these statistics, but on the real recordings they did
	// not improve 10 s figures on both halves of the people
	// (docs/biometrics.md, fourth round), so they are kept, and used only
	// when asked.
	DriftBackground bool
}

func (c Config) withDefaults() (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setF := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	setInt(&c.SampleRate, DefaultSampleRate)
	setDur(&c.Window, DefaultWindow)
	setDur(&c.Hop, DefaultHop)
	setDur(&c.MaxGap, DefaultMaxGap)
	setDur(&c.EnrollDuration, DefaultEnrollDuration)
	setF(&c.GenuineMean, DefaultGenuineMean)
	setF(&c.WindowLLRLimit, DefaultWindowLLRLimit)
	setF(&c.EvidenceLimit, DefaultEvidenceLimit)
	setF(&c.AdaptRate, DefaultAdaptRate)
	setF(&c.AdaptAbove, DefaultAdaptAbove)
	setInt(&c.MaxCohort, DefaultMaxCohort)
	setDur(&c.ReplayHistory, DefaultReplayHistory)
	setF(&c.ReplayTolerance, DefaultReplayTolerance)
	setInt(&c.ReplayMaxPoints, DefaultReplayMaxPoints)
	setF(&c.MaxHandSpeed, DefaultMaxHandSpeed)
	setF(&c.MinTremor, DefaultMinTremor)
	setF(&c.MaxClockDrift, DefaultMaxClockDrift)
	setInt(&c.PriorAsideFrom, DefaultPriorAsideFrom)

	switch {
	case c.SampleRate < 20 || c.SampleRate > 240:
		return c, fmt.Errorf("%w: SampleRate %d outside 20..240 Hz", ErrInvalidConfig, c.SampleRate)
	case c.Window < 500*time.Millisecond || c.Window > 30*time.Second:
		return c, fmt.Errorf("%w: Window %v outside 0.5s..30s", ErrInvalidConfig, c.Window)
	case c.Hop < 0 || c.Hop > c.Window:
		return c, fmt.Errorf("%w: Hop %v must be positive and at most Window", ErrInvalidConfig, c.Hop)
	case c.MaxGap < 0:
		return c, fmt.Errorf("%w: MaxGap %v is negative", ErrInvalidConfig, c.MaxGap)
	case c.EnrollDuration < c.Window:
		return c, fmt.Errorf("%w: EnrollDuration %v shorter than Window", ErrInvalidConfig, c.EnrollDuration)
	case c.GenuineMean <= 0 || c.WindowLLRLimit <= 0 || c.EvidenceLimit <= 0:
		return c, fmt.Errorf("%w: GenuineMean, WindowLLRLimit and EvidenceLimit must be positive", ErrInvalidConfig)
	case c.AdaptRate < 0 || c.AdaptRate > 0.1 || c.AdaptAbove < 0.5 || c.AdaptAbove >= 1:
		return c, fmt.Errorf("%w: AdaptRate must be in 0..0.1 and AdaptAbove in 0.5..1", ErrInvalidConfig)
	case c.MaxCohort < 2:
		return c, fmt.Errorf("%w: MaxCohort %d below 2", ErrInvalidConfig, c.MaxCohort)
	case c.ReplayHistory < 0 || c.ReplayTolerance <= 0 || c.ReplayMaxPoints < 0:
		return c, fmt.Errorf("%w: replay limits must be positive", ErrInvalidConfig)
	case c.MaxHandSpeed <= 0 || c.MinTremor < 0 || c.MaxClockDrift <= 0:
		return c, fmt.Errorf("%w: liveness limits must be positive", ErrInvalidConfig)
	}
	return c, nil
}

func (c Config) windowSamples() int {
	return int(c.Window.Seconds()*float64(c.SampleRate) + 0.5)
}

func (c Config) hopSamples() int {
	return max(1, int(c.Hop.Seconds()*float64(c.SampleRate)+0.5))
}
