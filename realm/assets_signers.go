package realm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
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

// signersBucket holds one entry per realm node, keyed by node name.
const signersBucket = "receipt-signers"

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
func (r *Realm) publishSigners(ctx context.Context) error {
	bucket, err := r.store.Bucket(ctx, store.BucketConfig{Name: signersBucket, Sealed: true})
	if err != nil {
		return fmt.Errorf("realm: receipt signers: %w", err)
	}
	r.signers = bucket
	// List reads the addresses in the key files without decrypting them;
	// the passphrase is not used.
	ring, err := assets.OpenKeyRing(filepath.Join(r.cfg.DataDir, "keys"), assets.DevPassphrase, 0)
	if err != nil {
		return fmt.Errorf("realm: receipt signers: %w", err)
	}
	keys, err := ring.List()
	if err != nil {
		return fmt.Errorf("realm: receipt signers: %w", err)
	}
	current := r.assets.ledger.Signer()
	for range 5 {
		var prev nodeSigners
		entry, err := bucket.Get(ctx, r.cfg.Node)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return fmt.Errorf("realm: receipt signers: %w", err)
		default:
			if err := json.Unmarshal(entry.Value, &prev); err != nil || prev.Node != r.cfg.Node {
				// Not something this node wrote: start over rather than
				// carry it on; the key files still list every key.
				r.log.Warn("the published receipt signers of this node do not parse; publishing them anew", "err", err)
				prev = nodeSigners{}
			}
		}
		next := mergeSigners(prev, r.cfg.Node, keys, current, time.Now().UTC())
		if len(next.Signers) > maxSignersPerNode {
			return fmt.Errorf("realm: receipt signers: %d keys, at most %d: remove old key files and the node's entry", len(next.Signers), maxSignersPerNode)
		}
		data, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("realm: receipt signers: %w", err)
		}
		if entry.Revision == 0 {
			_, err = bucket.Create(ctx, r.cfg.Node, data)
		} else {
			_, err = bucket.Update(ctx, r.cfg.Node, data, entry.Revision)
		}
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("realm: receipt signers: %w", err)
		}
		r.log.Info("receipt signers published", "current", current.Hex(), "keys", len(next.Signers))
		return nil
	}
	return fmt.Errorf("realm: receipt signers: %w: another writer keeps changing node %s's entry", store.ErrConflict, r.cfg.Node)
}

// signerView is one address of GET /v1/assets/signers.
type signerView struct {
	Node string `json:"node"`
	signerPeriod
}

// handleSigners lists every realm node's receipt signers, current and
// retired. An entry that does not parse, or is not the node its key
// names, is left out (and logged): the list only ever trusts less.
func (r *Realm) handleSigners(w http.ResponseWriter, req *http.Request) {
	keys, err := r.signers.Keys(req.Context())
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	slices.Sort(keys)
	out := []signerView{}
	for _, node := range keys {
		entry, err := r.signers.Get(req.Context(), node)
		if errors.Is(err, store.ErrNotFound) {
			continue // removed since the listing
		}
		if err != nil {
			r.edge.WriteError(w, req, err)
			return
		}
		var ns nodeSigners
		if err := json.Unmarshal(entry.Value, &ns); err != nil || ns.Node != node || !nodeNamePattern.MatchString(node) || len(ns.Signers) > maxSignersPerNode {
			r.log.Warn("ignoring a receipt signers entry that is not a node's", "key", node, "err", err)
			continue
		}
		for _, s := range ns.Signers {
			if !common.IsHexAddress(s.Address) || !strings.HasPrefix(s.Address, "0x") {
				r.log.Warn("ignoring a receipt signer that is not an address", "node", node, "address", s.Address)
				continue
			}
			s.Address = common.HexToAddress(s.Address).Hex()
			out = append(out, signerView{Node: node, signerPeriod: s})
		}
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"self": r.cfg.Node, "signers": out})
}
