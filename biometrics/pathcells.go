package biometrics

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Replay detection across the nodes of a cluster. Each node's registry
// holds the motion its own streams made; a recording captured through one
// node and replayed through another would meet an empty registry. So every
// point a node files is also shared, but as path cells, not motion: the
// grid cell the point falls in (and the cells of the segment leading to
// it), passed through a keyed pseudo-random function. A node that holds the
// cluster's key can compute the same cell of its own probe points and ask
// whether another node saw motion there, in the same order and at a
// plausible pace; without the key a cell is 64 random bits. No position,
// stream owner or avatar id leaves the node: an entry is (stream number,
// point number, cell).

// ErrPathKey reports a path key that is not 32 bytes.
var ErrPathKey = errors.New("biometrics: path key must be 32 bytes")

// ErrPathBatch reports bytes that are not a path batch.
var ErrPathBatch = errors.New("biometrics: malformed path batch")

// pathEntry says that point idx of a node's stream lies in, or leads
// through, cell.
type pathEntry struct {
	stream uint32
	idx    uint32
	cell   uint64
}

// PathBatch is a batch of one node's hashed path cells, as SharePaths hands
// them out and AddPeerPaths takes them in.
type PathBatch struct {
	entries []pathEntry
	at      time.Time // when the publishing node filed them; not marshaled
}

// Len is the number of cells in the batch.
func (b PathBatch) Len() int { return len(b.entries) }

// At is when the publishing node filed the cells, by the clock its streams
// were given (zero for a decoded batch: the receiver's own clock counts).
func (b PathBatch) At() time.Time { return b.at }

// pathBatchVersion is the first byte of a marshaled batch; each entry then
// takes pathEntrySize bytes.
const (
	pathBatchVersion  = 1
	pathEntrySize     = 4 + 4 + 8
	pathBatchHeader   = 1 + 4
	MaxPathBatchCells = 4096
)

// MarshalBinary encodes the batch: version, entry count, then each entry's
// stream, point number and cell, little-endian.
func (b PathBatch) MarshalBinary() ([]byte, error) {
	if len(b.entries) > MaxPathBatchCells {
		return nil, fmt.Errorf("%w: %d cells, at most %d", ErrPathBatch, len(b.entries), MaxPathBatchCells)
	}
	return b.appendBinary(make([]byte, 0, pathBatchHeader+pathEntrySize*len(b.entries))), nil
}

// appendBinary appends MarshalBinary's encoding of a batch of at most
// MaxPathBatchCells cells to out.
func (b PathBatch) appendBinary(out []byte) []byte {
	out = append(out, pathBatchVersion)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(b.entries)))
	for _, e := range b.entries {
		out = binary.LittleEndian.AppendUint32(out, e.stream)
		out = binary.LittleEndian.AppendUint32(out, e.idx)
		out = binary.LittleEndian.AppendUint64(out, e.cell)
	}
	return out
}

// UnmarshalBinary decodes what MarshalBinary wrote; anything else is
// ErrPathBatch and leaves b unchanged.
func (b *PathBatch) UnmarshalBinary(data []byte) error {
	if len(data) < pathBatchHeader || data[0] != pathBatchVersion {
		return fmt.Errorf("%w: %d bytes or unknown version", ErrPathBatch, len(data))
	}
	n := binary.LittleEndian.Uint32(data[1:])
	if n > MaxPathBatchCells {
		return fmt.Errorf("%w: %d cells, at most %d", ErrPathBatch, n, MaxPathBatchCells)
	}
	rest := data[pathBatchHeader:]
	if len(rest) != int(n)*pathEntrySize {
		return fmt.Errorf("%w: %d bytes for %d cells", ErrPathBatch, len(rest), n)
	}
	entries := make([]pathEntry, n)
	for i := range entries {
		e := rest[i*pathEntrySize:]
		entries[i] = pathEntry{
			stream: binary.LittleEndian.Uint32(e),
			idx:    binary.LittleEndian.Uint32(e[4:]),
			cell:   binary.LittleEndian.Uint64(e[8:]),
		}
	}
	b.entries = entries
	return nil
}

// pathKeyLabel separates the cell function's key from every other use of
// the key it is derived from (the cluster's template key).
const pathKeyLabel = "zerorealm biometrics path cells v1"

// cellHasher is the keyed pseudo-random function of cells: AES-256 of the
// cell's coordinates, under a key derived from the cluster's key. One block
// cipher call per cell, so a probe window's forty cells cost about a
// microsecond.
type cellHasher struct {
	block cipher.Block
	cell  float64
	// bufs holds the cipher's input and output blocks: passed to the
	// cipher through its interface they would escape, one allocation a
	// cell.
	bufs sync.Pool // of *cellBuf
}

type cellBuf struct{ in, out [aes.BlockSize]byte }

func (h *cellHasher) buf() *cellBuf {
	if b, ok := h.bufs.Get().(*cellBuf); ok {
		return b
	}
	return &cellBuf{}
}

func newCellHasher(key []byte, cell float64) (*cellHasher, error) {
	if len(key) != 32 {
		return nil, ErrPathKey
	}
	k, err := hkdf.Key(sha256.New, key, nil, pathKeyLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("biometrics: path key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("biometrics: path key: %w", err)
	}
	return &cellHasher{block: block, cell: cell}, nil
}

// hash is the cell of p on grid (0, or 1 for the grid shifted by half a
// cell).
func (h *cellHasher) hash(b *cellBuf, p *motionPoint, grid int) uint64 {
	b.in = [aes.BlockSize]byte{}
	off := 0.5 * float64(grid)
	for c, v := range p {
		q := math.Floor(float64(v)/h.cell + off)
		q = clamp(q, math.MinInt16, math.MaxInt16)
		binary.LittleEndian.PutUint16(b.in[2*c:], uint16(int16(q)))
	}
	b.in[12] = byte(grid)
	h.block.Encrypt(b.out[:], b.in[:])
	return binary.LittleEndian.Uint64(b.out[:])
}

// sharedSegmentSteps: the segment leading to a point is filed every
// quarter cell, finer than the node's own registry does, because a peer
// cannot measure a probe point's distance to the segment and has only the
// cells to go by. maxSharedSegmentSteps bounds it (a longer segment is a
// jump, not a path).
const (
	sharedSegmentSteps    = 4
	maxSharedSegmentSteps = 64
	// sharedCellTolerances: a shared cell is this many replay tolerances
	// wide (2 cm), half the registry's own: a peer cannot measure the
	// distance to a path, so the cell has to be tight enough that
	// strangers' motion seldom shares a run of them (with 4 cm cells 813
	// of a synthetic crowd of 1,000 on three nodes were taken for
	// replays).
	sharedCellTolerances = 2
)

// cellsOf appends the entries of point idx at p, reached from prev when
// prev is not nil: its own cell on both grids and every cell the segment
// from prev passes through, filed under the segment's first point as the
// node's own registry files them.
func (h *cellHasher) cellsOf(dst []pathEntry, stream, idx uint32, p, prev *motionPoint) []pathEntry {
	b := h.buf()
	defer h.bufs.Put(b)
	for grid := range 2 {
		dst = append(dst, pathEntry{stream: stream, idx: idx, cell: h.hash(b, p, grid)})
	}
	if prev == nil {
		return dst
	}
	steps := int(math.Ceil(math.Sqrt(pointDist2(prev, p)) / (h.cell / sharedSegmentSteps)))
	if steps < 2 || steps > maxSharedSegmentSteps {
		return dst
	}
	last := [2]uint64{h.hash(b, prev, 0), h.hash(b, prev, 1)}
	end := [2]uint64{dst[len(dst)-2].cell, dst[len(dst)-1].cell}
	var q motionPoint
	for s := 1; s < steps; s++ {
		t := float32(s) / float32(steps)
		for c := range q {
			q[c] = prev[c] + t*(p[c]-prev[c])
		}
		for grid := range 2 {
			k := h.hash(b, &q, grid)
			if k == last[grid] || k == end[grid] {
				continue
			}
			last[grid] = k
			dst = append(dst, pathEntry{stream: stream, idx: idx - 1, cell: k})
		}
	}
	return dst
}

// peerRef is a point of a peer's stream. Peer streams are numbered in the
// upper half of the stream numbers so that they never meet a local one.
type peerRef struct{ stream, idx uint32 }

type peerGeneration struct {
	started time.Time
	n       int
	cells   map[uint64][]peerRef
}

// peerPaths is what a node knows of its peers' motion: their cells, for as
// long and as many as its own registry keeps (ReplayHistory,
// ReplayMaxPoints), forgotten by generations like the registry.
type peerPaths struct {
	// hasher hashes the cells this node publishes. lookup is hasher, then
	// one for each key a rotation retired: a window is looked up under
	// each, so that cells a peer hashed under a retired key (a node not
	// yet rotated, or batches stored before the rotation) are still found.
	// The cells of every key go into the same maps: keyed hashes under
	// different keys are unrelated 64-bit values.
	hasher  *cellHasher
	lookup  []*cellHasher
	publish func(PathBatch)

	mu        sync.Mutex
	history   time.Duration
	maxCells  int
	gens      [2]*peerGeneration
	received  atomic.Uint64
	published atomic.Uint64
}

func (pp *peerPaths) rotate(now time.Time) {
	if pp.gens[0] == nil {
		pp.gens[0] = &peerGeneration{started: now, cells: map[uint64][]peerRef{}}
		return
	}
	full := pp.maxCells > 0 && pp.gens[0].n >= pp.maxCells/2
	if now.Sub(pp.gens[0].started) >= pp.history/2 || full {
		pp.gens[1], pp.gens[0] = pp.gens[0], &peerGeneration{started: now, cells: map[uint64][]peerRef{}}
	}
}

// peerStream numbers a peer's stream: a hash of the peer's name and its
// own number, with the top bit set.
func peerStream(node string, stream uint32) uint32 {
	h := fnv.New32a()
	h.Write([]byte(node))
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], stream)
	h.Write(b[:])
	return h.Sum32() | 1<<31
}

func (pp *peerPaths) add(node string, b PathBatch, now time.Time) {
	if pp.history <= 0 || pp.maxCells == 0 {
		return
	}
	pp.mu.Lock()
	defer pp.mu.Unlock()
	pp.rotate(now)
	g := pp.gens[0]
	streams := map[uint32]uint32{}
	for _, e := range b.entries {
		s, ok := streams[e.stream]
		if !ok {
			s = peerStream(node, e.stream)
			streams[e.stream] = s
		}
		refs := g.cells[e.cell]
		if len(refs) >= maxCandidates {
			// A crowded cell keeps its latest refs: the copy of recent
			// motion is what is being looked for.
			refs = slices.Delete(refs, 0, 1)
		}
		g.cells[e.cell] = append(refs, peerRef{stream: s, idx: e.idx})
		g.n++
	}
	pp.received.Add(uint64(len(b.entries)))
}

// sequenceShare is the peers' side of the registry's sequenceShare: the
// share of consecutive probe point pairs whose cells both hold a point of
// one peer stream, in order and at a pace between 0.5× and 2×.
func (pp *peerPaths) sequenceShare(probe []motionPoint, probeIdx []uint32, scratch [][]peerRef) (float64, [][]peerRef) {
	if len(probe) < 2 {
		return 0, scratch
	}
	perKey := 2 * len(probe)
	keys := make([]uint64, 0, perKey*len(pp.lookup))
	for _, h := range pp.lookup {
		b := h.buf()
		for i := range probe {
			keys = append(keys, h.hash(b, &probe[i], 0), h.hash(b, &probe[i], 1))
		}
		h.bufs.Put(b)
	}
	scratch = slices.Grow(scratch[:0], len(probe))[:len(probe)]
	pp.mu.Lock()
	for i := range probe {
		c := scratch[i][:0]
		for _, g := range pp.gens {
			if g == nil {
				continue
			}
			for off := 0; off < len(keys); off += perKey {
				c = append(c, g.cells[keys[off+2*i]]...)
				c = append(c, g.cells[keys[off+2*i+1]]...)
			}
		}
		scratch[i] = c
	}
	pp.mu.Unlock()
	good := 0
	for j := 1; j < len(probe); j++ {
		if peerFollowed(scratch[j-1], scratch[j], int64(probeIdx[j]-probeIdx[j-1])) {
			good++
		}
	}
	return float64(good) / float64(len(probe)-1), scratch
}

// peerFollowed asks for progress along the peer's path (at least one of
// its points per pair), where the node's own registry also accepts
// standing still: a cell is wider than the registry's tolerance, and a
// hand moving about inside one cell that someone else's path crossed
// would otherwise follow it "at pace 0". So the peers catch replays played
// down to about 0.7× speed, the node's own registry down to 0.5×.
func peerFollowed(a, b []peerRef, gap int64) bool {
	for _, x := range a {
		for _, y := range b {
			if x.stream != y.stream {
				continue
			}
			if step := int64(y.idx) - int64(x.idx); step >= 1 && step <= 2*gap+1 {
				return true
			}
		}
	}
	return false
}

// SharePaths turns on replay detection across nodes. From now on every
// point the engine files in its replay registry is also hashed under key
// (which every node of the cluster must share: the realm's template key)
// and handed to publish in batches; publish must not block (PathFeed
// queues them). A window is then also judged against the cells peers
// passed to AddPeerPaths. Calling it again replaces the key and publish.
// retired are the keys a rotation of the template key retired: cells
// hashed under them are looked up too, never published.
func (e *Engine) SharePaths(key []byte, publish func(PathBatch), retired ...[]byte) error {
	h, err := newCellHasher(key, sharedCellTolerances*e.cfg.ReplayTolerance)
	if err != nil {
		return err
	}
	pp := &peerPaths{hasher: h, lookup: []*cellHasher{h}, publish: publish, history: e.cfg.ReplayHistory, maxCells: e.cfg.ReplayMaxPoints}
	for _, k := range retired {
		rh, err := newCellHasher(k, sharedCellTolerances*e.cfg.ReplayTolerance)
		if err != nil {
			return err
		}
		pp.lookup = append(pp.lookup, rh)
	}
	e.replay.peers.Store(pp)
	return nil
}

// AddPeerPaths files cells another node shared (see SharePaths), received
// at now. node names the peer, so that its stream numbers do not mix with
// another peer's. Without SharePaths first the cells are dropped.
func (e *Engine) AddPeerPaths(node string, b PathBatch, now time.Time) {
	if pp := e.replay.peers.Load(); pp != nil {
		pp.add(node, b, now)
	}
}

// PathStats counts the cells this engine published and received.
type PathStats struct {
	Published, Received uint64
}

// PathStats reports how many cells the engine shared and took in since
// SharePaths.
func (e *Engine) PathStats() PathStats {
	pp := e.replay.peers.Load()
	if pp == nil {
		return PathStats{}
	}
	return PathStats{Published: pp.published.Load(), Received: pp.received.Load()}
}
