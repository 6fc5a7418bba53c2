package market

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/store"
)

// Receipt signers. Every realm node signs its receipts and checkpoints with
// the active key of its own key ring (DATA/keys); `zerorealm keys rotate`
// makes a new key active at the node's next start and keeps the old ones.
// GET /v1/assets/domain names only the answering node's current key, so a
// receipt from another node, or from before a rotation, could not be
// checked with what the API publishes. So each node writes its signer
// addresses, current and retired, to the bucket below under its node
// name when it starts (which is when a rotation takes effect), and
// GET /v1/assets/signers lists every node's.
//
// The list is a convenience, not a root of trust: anything that can write
// the bucket (any client with the cluster's credentials) can add an
// address to it. A verifier that must not trust the cluster pins the
// addresses it got offline from `zerorealm keys export-public`.

// SignersBucket holds one entry per realm node, keyed by node name: its
// receipt signers, as JSON.
const SignersBucket = "receipt-signers"

// maxSignersPerNode bounds a node's entry, and what a reader accepts from
// one: a rotation a day for years fits.
const maxSignersPerNode = 4096

// signerPeriod is one signing key of a node and when it may have signed.
// Since is a lower bound (the key did not exist before, so nothing it
// signed is older); Until, for a retired key, an upper bound (the node
// had stopped signing with it by then).
type signerPeriod struct {
	Address string     `json:"address"`
	Since   time.Time  `json:"since"`
	Until   *time.Time `json:"until,omitempty"`
	Current bool       `json:"current"`
}

// nodeSigners is a node's entry in the bucket.
type nodeSigners struct {
	Node    string         `json:"node"`
	Signers []signerPeriod `json:"signers"`
	Updated time.Time      `json:"updated"`
}

// mergeSigners is the node's entry after a start with current as its
// signer and ring as its key ring (oldest first), given the entry it
// published before (zero if none). Nothing published is dropped: a key
// whose file was removed still signed the receipts it signed. A key seen
// for the first time starts at its creation; a key that stops being
// current, or is first seen retired, ends now, the first moment this node
// can vouch it no longer signs with it.
func mergeSigners(prev nodeSigners, node string, ring []assets.KeyInfo, current common.Address, now time.Time) nodeSigners {
	out := nodeSigners{Node: node, Updated: now, Signers: slices.Clone(prev.Signers)}
	at := func(a common.Address) int {
		return slices.IndexFunc(out.Signers, func(s signerPeriod) bool { return strings.EqualFold(s.Address, a.Hex()) })
	}
	for _, k := range ring {
		if at(k.Address) < 0 {
			out.Signers = append(out.Signers, signerPeriod{Address: k.Address.Hex(), Since: k.Created.UTC()})
		}
	}
	if at(current) < 0 {
		// The ring always holds the active key; this is only for a ring
		// that could not be listed.
		out.Signers = append(out.Signers, signerPeriod{Address: current.Hex(), Since: now})
	}
	end := now
	for i := range out.Signers {
		s := &out.Signers[i]
		if strings.EqualFold(s.Address, current.Hex()) {
			s.Current, s.Until = true, nil
			continue
		}
		s.Current = false
		if s.Until == nil {
			s.Until = &end
		}
	}
	slices.SortStableFunc(out.Signers, func(a, b signerPeriod) int { return a.Since.Compare(b.Since) })
	return out
}

// publishSigners writes this node's signer addresses to the bucket, with
// compare-and-set so that what an earlier start published is merged, not
// lost. It runs at start, after the ledger opened the active key.
func (s *Service) publishSigners(ctx context.Context, st *store.Store, ring KeyLister) error {
	bucket, err := st.Bucket(ctx, store.BucketConfig{Name: SignersBucket, Sealed: true})
	if err != nil {
		return fmt.Errorf("realm: receipt signers: %w", err)
	}
	s.signers = bucket
	keys, err := ring.List()
	if err != nil {
		return fmt.Errorf("realm: receipt signers: %w", err)
	}
	current := s.ledger.Signer()
	for range 5 {
		var prev nodeSigners
		entry, err := bucket.Get(ctx, s.node)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return fmt.Errorf("realm: receipt signers: %w", err)
		default:
			if err := json.Unmarshal(entry.Value, &prev); err != nil || prev.Node != s.node {
				// Not something this node wrote: start over rather than
				// carry it on; the key files still list every key.
				s.log.Warn("the published receipt signers of this node do not parse; publishing them anew", "err", err)
				prev = nodeSigners{}
			}
		}
		next := mergeSigners(prev, s.node, keys, current, s.now().UTC())
		if len(next.Signers) > maxSignersPerNode {
			return fmt.Errorf("realm: receipt signers: %d keys, at most %d: remove old key files and the node's entry", len(next.Signers), maxSignersPerNode)
		}
		data, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("realm: receipt signers: %w", err)
		}
		if entry.Revision == 0 {
			_, err = bucket.Create(ctx, s.node, data)
		} else {
			_, err = bucket.Update(ctx, s.node, data, entry.Revision)
		}
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("realm: receipt signers: %w", err)
		}
		s.log.Info("receipt signers published", "current", current.Hex(), "keys", len(next.Signers))
		return nil
	}
	return fmt.Errorf("realm: receipt signers: %w: another writer keeps changing node %s's entry", store.ErrConflict, s.node)
}

// NodeSigner is one node's receipt signer and its period, as GET
// /v1/assets/signers lists it.
type NodeSigner struct {
	Node string `json:"node"`
	signerPeriod
}

// Signers is every realm node's receipt signers, current and retired,
// with checksummed addresses. An entry that does not parse, or is not the
// node its key names, is left out (and logged, at warn the first time
// only): the list only ever trusts less.
func (s *Service) Signers(ctx context.Context) ([]NodeSigner, error) {
	keys, err := s.signers.Keys(ctx)
	if err != nil {
		return nil, err
	}
	slices.Sort(keys)
	out := []NodeSigner{}
	for _, node := range keys {
		entry, err := s.signers.Get(ctx, node)
		if errors.Is(err, store.ErrNotFound) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, err
		}
		var ns nodeSigners
		if err := json.Unmarshal(entry.Value, &ns); err != nil || ns.Node != node || !nodeNamePattern.MatchString(node) || len(ns.Signers) > maxSignersPerNode {
			s.badSigners.log(ctx, s.log, fmt.Sprintf("entry\x00%s\x00%d", node, entry.Revision),
				"ignoring a receipt signers entry that is not a node's", "key", node, "revision", entry.Revision, "err", err)
			continue
		}
		for _, sp := range ns.Signers {
			if !common.IsHexAddress(sp.Address) || !strings.HasPrefix(sp.Address, "0x") {
				s.badSigners.log(ctx, s.log, fmt.Sprintf("address\x00%s\x00%s", node, sp.Address),
					"ignoring a receipt signer that is not an address", "node", node, "address", sp.Address)
				continue
			}
			sp.Address = common.HexToAddress(sp.Address).Hex()
			out = append(out, NodeSigner{Node: node, signerPeriod: sp})
		}
	}
	return out, nil
}

// maxWarnedSigners bounds what badSignerLog remembers: whoever can write
// the bucket could otherwise grow it without end.
const maxWarnedSigners = 1024

// badSignerLog warns once per distinct bad signers entry (a node's entry
// at one revision, or one bad address of a node) and at debug after that:
// Signers runs at every refresh of the agents' roots, and the same bad
// entry warned each time would drown the log. Once maxWarnedSigners are
// remembered, anything new is logged at debug too.
type badSignerLog struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

func (b *badSignerLog) log(ctx context.Context, log *slog.Logger, key, msg string, args ...any) {
	b.mu.Lock()
	_, seen := b.seen[key]
	first := !seen && len(b.seen) < maxWarnedSigners
	if first {
		if b.seen == nil {
			b.seen = map[string]struct{}{}
		}
		b.seen[key] = struct{}{}
	}
	b.mu.Unlock()
	level := slog.LevelDebug
	if first {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, msg, args...)
}

// nodeNamePattern is the realm's rule for node names (its Config.Node):
// an entry under any other key was not written by a node.
var nodeNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
