package gatewaytest

import (
	"context"
	"sync/atomic"

	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

// Held is a simulated actuator whose moves wait until Release: a driver
// slower than any timeout around it, for as long as its test wants.
type Held struct {
	gateway.Driver
	release chan struct{}
	moves   atomic.Int32
}

// NewHeld is a held driver of a, a simulated actuator.
func NewHeld(a twin.Actuator) *Held {
	return &Held{Driver: gateway.NewSim(a, gateway.SimConfig{}), release: make(chan struct{})}
}

// Move counts the move, waits until Release (or ctx ends, moving
// nothing), then moves the simulated actuator.
func (d *Held) Move(ctx context.Context, target float64) (gateway.Reading, error) {
	d.moves.Add(1)
	select {
	case <-d.release:
	case <-ctx.Done():
		return d.Read(), ctx.Err()
	}
	return d.Driver.Move(ctx, target)
}

// Release lets every move waiting, and every later one, through. Call it
// once.
func (d *Held) Release() { close(d.release) }

// Moves is how many moves the gateway asked for.
func (d *Held) Moves() int { return int(d.moves.Load()) }
