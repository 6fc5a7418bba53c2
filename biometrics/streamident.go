package biometrics

import "sync"

// streamIdents gives an avatar's stream the number, in the replay
// registry, of the avatar's previous stream on the node, once that one has
// closed, and continues its count of samples, so that its points go on
// being numbered where the previous stream's stopped. The registry leaves
// out a stream's own motion of the last 10 s (ownExclusionPoints) as the
// window's own overlap, not earlier motion; a node that sheds a stream and
// opens it again later (node-busy, then the client's retry), or a realm
// that starts an avatar's stream over, would otherwise give the same
// person's motion of seconds before another stream's number, and judge
// it as someone else's: a person who barely moves comes back within a
// centimetre of it, and a client that sends its last frames again sends
// it verbatim. Motion older than that counts as before, own or not.
//
// Only a closed stream's number is taken over: two streams of one avatar
// open at once (two headsets) keep numbers of their own, so that each
// one's path stays its own.
type streamIdents struct {
	mu sync.Mutex
	// opened counts each avatar's open streams; closed holds the last
	// closed stream of each avatar that has none open.
	opened map[string]int
	closed map[string]closedStream
	// pruneAt is the size of closed at which it is next cleared of
	// streams whose motion the registry no longer holds.
	pruneAt int
}

type closedStream struct {
	n       uint32
	samples uint64
	// rotations is the registry's count of generations when the stream
	// closed: two more, and none of its points are left.
	rotations uint64
}

const minIdentPrune = 1024

// open returns the number and sample count a new stream of avatarID
// starts from.
func (t *streamIdents) open(e *Engine, avatarID string) (uint32, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.opened == nil {
		t.opened, t.closed = map[string]int{}, map[string]closedStream{}
	}
	t.opened[avatarID]++
	c, ok := t.closed[avatarID]
	if !ok {
		return e.nextStream.Add(1), 0
	}
	delete(t.closed, avatarID)
	if c.rotations+2 <= e.replay.rotationCount() {
		return e.nextStream.Add(1), 0 // nothing of it is left to exclude
	}
	return c.n, c.samples
}

// close notes that avatarID's stream n closed after samples samples.
func (t *streamIdents) close(e *Engine, avatarID string, n uint32, samples uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.opened[avatarID]--
	if t.opened[avatarID] > 0 {
		return
	}
	delete(t.opened, avatarID)
	rotations := e.replay.rotationCount()
	t.closed[avatarID] = closedStream{n: n, samples: samples, rotations: rotations}
	if len(t.closed) >= max(t.pruneAt, minIdentPrune) {
		for id, c := range t.closed {
			if c.rotations+2 <= rotations {
				delete(t.closed, id)
			}
		}
		t.pruneAt = 2 * len(t.closed)
	}
}
