package cpuload

import (
	"errors"
	"sync"
	"time"
)

// Reading is the cumulative CPU time of this process and of the machine's
// idle cores at one moment. Only differences between two readings mean
// anything.
type Reading struct {
	// Process is the user and system CPU time this process has used.
	Process time.Duration
	// MachineIdle is the idle time summed over every core of the machine,
	// when MachineKnown.
	MachineIdle  time.Duration
	MachineKnown bool
}

// Read takes a Reading of this process and this machine.
func Read() (Reading, error) {
	process, err := processCPU()
	if err != nil {
		return Reading{}, err
	}
	r := Reading{Process: process}
	idle, known, err := machineIdle()
	if err != nil {
		return Reading{}, err
	}
	r.MachineIdle, r.MachineKnown = idle, known
	return r, nil
}

// Rates are the cores in use and idle over a Meter's window.
type Rates struct {
	// ProcessCores is how many cores this process kept busy on average.
	ProcessCores float64
	// IdleCores is how many of the machine's cores were idle on average,
	// when MachineKnown.
	IdleCores    float64
	MachineKnown bool
	// Over is the span the rates were measured over, and At its end.
	Over time.Duration
	At   time.Time
}

// DefaultWindow is how far back a Meter's rates reach: long enough to
// smooth a garbage collection or a burst of enrollments, short enough to
// see a machine fill within seconds.
const DefaultWindow = 5 * time.Second

// ErrNoRates is Rates before a Meter has two readings a positive time
// apart within its window.
var ErrNoRates = errors.New("cpuload: no rates yet")

type sample struct {
	at time.Time
	r  Reading
}

// Meter turns Readings taken over time into Rates. It is safe for
// concurrent use.
type Meter struct {
	read   func() (Reading, error)
	window time.Duration

	mu      sync.Mutex
	samples []sample // oldest first, spanning at most window plus one sample
}

// NewMeter returns a Meter over window (DefaultWindow when zero or
// negative) that takes its readings with read (Read when nil).
func NewMeter(window time.Duration, read func() (Reading, error)) *Meter {
	if window <= 0 {
		window = DefaultWindow
	}
	if read == nil {
		read = Read
	}
	return &Meter{read: read, window: window}
}

// Sample takes a reading dated now. A reading that fails, or that goes
// backwards (a counter the system reset), starts the window again: rates
// across it would be wrong.
func (m *Meter) Sample(now time.Time) error {
	r, err := m.read()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.samples = m.samples[:0]
		return err
	}
	if n := len(m.samples); n > 0 {
		last := m.samples[n-1]
		if !now.After(last.at) || r.Process < last.r.Process || r.MachineKnown != last.r.MachineKnown ||
			r.MachineIdle < last.r.MachineIdle {
			m.samples = m.samples[:0]
		}
	}
	m.samples = append(m.samples, sample{at: now, r: r})
	// Keep the newest sample at least window old, so that the rates span
	// the whole window once it has passed.
	drop := 0
	for drop+1 < len(m.samples) && now.Sub(m.samples[drop+1].at) >= m.window {
		drop++
	}
	if drop > 0 {
		m.samples = append(m.samples[:0], m.samples[drop:]...)
	}
	return nil
}

// Rates are the rates between the oldest and the newest reading in the
// window, or ErrNoRates.
func (m *Meter) Rates() (Rates, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) < 2 {
		return Rates{}, ErrNoRates
	}
	first, last := m.samples[0], m.samples[len(m.samples)-1]
	over := last.at.Sub(first.at)
	if over <= 0 {
		return Rates{}, ErrNoRates
	}
	secs := over.Seconds()
	rates := Rates{
		ProcessCores: (last.r.Process - first.r.Process).Seconds() / secs,
		MachineKnown: last.r.MachineKnown,
		Over:         over,
		At:           last.at,
	}
	if rates.MachineKnown {
		rates.IdleCores = (last.r.MachineIdle - first.r.MachineIdle).Seconds() / secs
	}
	return rates, nil
}
