package assets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zerorealm/zerorealm/internal/store"
)

// Event is one entry of an asset's or balance's history.
type Event struct {
	Seq    uint64         `json:"sequence"`
	Event  string         `json:"event"` // mint, transfer, trade
	From   common.Address `json:"from"`
	To     common.Address `json:"to"`
	Amount uint64         `json:"amount"`
	Digest common.Hash    `json:"digest"`
	Time   time.Time      `json:"time"`
}

// Asset is a unique item as the read model knows it.
type Asset struct {
	Collection string         `json:"collection"`
	Item       string         `json:"item"`
	Owner      common.Address `json:"owner"`
	Seq        uint64         `json:"sequence"`
	History    []Event        `json:"history,omitempty"`
}

// Balance is an owner's balance of a fungible collection.
type Balance struct {
	Collection string         `json:"collection"`
	Owner      common.Address `json:"owner"`
	Balance    uint64         `json:"balance"`
	Seq        uint64         `json:"sequence"`
}

// SignedReceipt is a receipt with the realm's signature.
type SignedReceipt struct {
	Receipt   Receipt
	Digest    common.Hash // the receipt's EIP-712 digest
	Signature Signature
	Signer    common.Address
}

// SignedCheckpoint is a checkpoint with the realm's signature.
type SignedCheckpoint struct {
	Checkpoint Checkpoint
	Digest     common.Hash
	Signature  Signature
	Signer     common.Address
}

type receiptEntry struct {
	Intent    common.Hash `json:"intent"`
	Sequence  uint64      `json:"sequence"`
	Index     uint64      `json:"index"`
	Previous  common.Hash `json:"previous"`
	Time      uint64      `json:"time"`
	Signature Signature   `json:"signature"`
}

type receiptBlock struct {
	Signer   common.Address `json:"signer"`
	Receipts []receiptEntry `json:"receipts"`
}

type checkpointRecord struct {
	First     uint64         `json:"first"`
	Count     uint64         `json:"count"`
	Root      common.Hash    `json:"root"`
	Previous  common.Hash    `json:"previous"`
	Time      uint64         `json:"time"`
	Signature Signature      `json:"signature"`
	Signer    common.Address `json:"signer"`
}

type chainView struct {
	receipts    []SignedReceipt
	lastSeq     uint64 // of the chain's last block
	checkpoints []SignedCheckpoint
	lastCkptSeq uint64
}

type floorState struct {
	floor, seq uint64
}

// view is the ledger's read model, built from the LEDGER stream by every
// node. Lock order: view.mu only; nothing is called while it is held.
type view struct {
	scheme *Scheme
	node   string

	mu            sync.RWMutex
	assets        map[string]*Asset // "collection/item"
	byOwner       map[common.Address]map[string]struct{}
	byCollection  map[string][]string // item keys in mint order
	balances      map[string]map[common.Address]*Balance
	nonceNext     map[common.Address]uint64
	released      map[string]uint64 // "<owner>.<nonce>" -> sequence of the release that freed it
	floors        map[common.Address]floorState
	wallets       map[common.Address]string
	avatarWallets map[string][]common.Address
	custodyRecs   map[string]custodyRecord
	custodyOwners map[common.Address]string      // custodial address -> avatar
	velocity      map[string]*velocityLog        // "<collection>.<holder>"
	receipts      map[common.Hash]*SignedReceipt // by intent digest
	byReceipt     map[common.Hash]*SignedReceipt // by receipt digest
	chains        map[string]*chainView
	orphans       map[common.Hash]uint64 // intents this node applied that have no receipt yet
	strays        map[common.Hash]stray  // intents other nodes applied that have no receipt yet
	claims        map[common.Hash]string // intent -> the node that claimed its late receipt (reconcile.go)

	// own are the records this node has sent and not yet seen applied,
	// by message id: the node's receipt blocks and its unique transfers'
	// asset records. A record that comes back with exactly the bytes sent
	// is applied with what the node built it from (the chain's receipts,
	// the record's fields) instead of being decoded, and its receipts
	// hashed, again. Any other record, or the same id with other bytes, is
	// read from its bytes, as on every other node.
	ownMu sync.Mutex
	own   map[string]ownRecord
}

type ownRecord struct {
	data     []byte
	receipts []SignedReceipt // a receipt block
	asset    assetState      // an asset record
}

// sent registers a record before its append.
func (v *view) sent(msgID string, rec ownRecord) {
	v.ownMu.Lock()
	v.own[msgID] = rec
	v.ownMu.Unlock()
}

// unsent forgets a record whose append failed. If it was stored after
// all (an acknowledgement lost), the projection reads it from its bytes.
func (v *view) unsent(msgID string) {
	v.ownMu.Lock()
	delete(v.own, msgID)
	v.ownMu.Unlock()
}

// ownRecord returns what this node built m from, if it sent m, byte for
// byte.
func (v *view) ownRecord(m store.Msg) (ownRecord, bool) {
	id := m.Header.Get(jetstream.MsgIDHeader)
	if id == "" {
		return ownRecord{}, false
	}
	v.ownMu.Lock()
	r, ok := v.own[id]
	delete(v.own, id)
	v.ownMu.Unlock()
	if !ok || !bytes.Equal(r.data, m.Data) {
		return ownRecord{}, false
	}
	return r, true
}

func newView(node string, scheme *Scheme) *view {
	return &view{
		scheme: scheme, node: node,
		assets: map[string]*Asset{}, byOwner: map[common.Address]map[string]struct{}{},
		byCollection: map[string][]string{}, balances: map[string]map[common.Address]*Balance{},
		nonceNext: map[common.Address]uint64{}, released: map[string]uint64{}, floors: map[common.Address]floorState{},
		wallets: map[common.Address]string{}, avatarWallets: map[string][]common.Address{},
		custodyRecs: map[string]custodyRecord{}, custodyOwners: map[common.Address]string{}, velocity: map[string]*velocityLog{}, receipts: map[common.Hash]*SignedReceipt{},
		byReceipt: map[common.Hash]*SignedReceipt{}, chains: map[string]*chainView{},
		orphans: map[common.Hash]uint64{}, strays: map[common.Hash]stray{}, claims: map[common.Hash]string{},
		own: map[string]ownRecord{},
	}
}

// apply folds one ledger message into the model. A message it cannot read
// stops the projection (store.Follow logs it): a node must not serve a
// model that silently skipped history.
func (v *view) apply(m store.Msg) error {
	rest, ok := strings.CutPrefix(m.Subject, "ledger.")
	if !ok {
		return nil
	}
	kind, key, _ := strings.Cut(rest, ".")
	v.mu.Lock()
	defer v.mu.Unlock()
	switch kind {
	case "asset":
		var rec assetState
		if own, ok := v.ownRecord(m); ok && own.receipts == nil {
			rec = own.asset
		} else if err := json.Unmarshal(m.Data, &rec); err != nil {
			return fmt.Errorf("asset record: %w", err)
		}
		coll, item, _ := strings.Cut(key, ".")
		v.applyAsset(coll, item, m, &rec)
	case "balance":
		var rec balanceRecord
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			return fmt.Errorf("balance record: %w", err)
		}
		coll, owner, _ := strings.Cut(key, ".")
		byOwner := v.balances[coll]
		if byOwner == nil {
			byOwner = map[common.Address]*Balance{}
			v.balances[coll] = byOwner
		}
		addr := common.HexToAddress(owner)
		byOwner[addr] = &Balance{Collection: coll, Owner: addr, Balance: rec.Balance, Seq: m.Seq}
		v.unreceipted(rec.Digest, rec.Node, m.Seq)
	case "nonce":
		if bytes.Contains(m.Data, releasedMarker) {
			// Released after its intent failed: free again, at this sequence.
			v.released[key] = m.Seq
			return nil
		}
		delete(v.released, key)
		owner, n, _ := strings.Cut(key, ".")
		nonce, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			return nil // not a subject this ledger writes: nothing to suggest
		}
		addr := common.HexToAddress(owner)
		if nonce+1 > v.nonceNext[addr] {
			v.nonceNext[addr] = nonce + 1
		}
	case "floor":
		var rec floorRecord
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			return fmt.Errorf("floor record: %w", err)
		}
		v.floors[common.HexToAddress(key)] = floorState{floor: rec.Floor, seq: m.Seq}
	case "wallet":
		var rec walletRecord
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			return fmt.Errorf("wallet record: %w", err)
		}
		addr := common.HexToAddress(key)
		v.wallets[addr] = rec.Avatar
		v.avatarWallets[rec.Avatar] = append(v.avatarWallets[rec.Avatar], addr)
	case "custody":
		var rec custodyRecord
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			return fmt.Errorf("custody record: %w", err)
		}
		v.custodyRecs[rec.Avatar] = rec
		v.custodyOwners[rec.Address] = rec.Avatar
	case "velocity":
		if err := v.applyVelocity(key, m.Seq, m.Data); err != nil {
			return fmt.Errorf("velocity record: %w", err)
		}
	case "receipts":
		cv := v.chain(key)
		add := func(sr *SignedReceipt) {
			cv.receipts = append(cv.receipts, *sr)
			v.receipts[sr.Receipt.Intent] = sr
			v.byReceipt[sr.Digest] = sr
			delete(v.orphans, sr.Receipt.Intent)
			delete(v.strays, sr.Receipt.Intent)
			delete(v.claims, sr.Receipt.Intent)
		}
		if key == v.node {
			if own, ok := v.ownRecord(m); ok && own.receipts != nil {
				for i := range own.receipts {
					add(&own.receipts[i])
				}
				cv.lastSeq = m.Seq
				return nil
			}
		}
		var blk receiptBlock
		if err := json.Unmarshal(m.Data, &blk); err != nil {
			return fmt.Errorf("receipt block: %w", err)
		}
		for _, e := range blk.Receipts {
			r := Receipt{Intent: e.Intent, Sequence: e.Sequence, Chain: key, Index: e.Index, Previous: e.Previous, Time: e.Time}
			add(&SignedReceipt{Receipt: r, Digest: v.scheme.ReceiptDigest(&r), Signature: e.Signature, Signer: blk.Signer})
		}
		cv.lastSeq = m.Seq
	case "claim":
		var rec claimRecord
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			return fmt.Errorf("claim record: %w", err)
		}
		intent := common.HexToHash(key)
		if _, done := v.receipts[intent]; !done {
			v.claims[intent] = rec.Node
		}
	case "checkpoint":
		var rec checkpointRecord
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			return fmt.Errorf("checkpoint record: %w", err)
		}
		cv := v.chain(key)
		c := Checkpoint{Chain: key, First: rec.First, Count: rec.Count, Root: rec.Root, Previous: rec.Previous, Time: rec.Time}
		cv.checkpoints = append(cv.checkpoints, SignedCheckpoint{Checkpoint: c, Digest: v.scheme.CheckpointDigest(&c), Signature: rec.Signature, Signer: rec.Signer})
		cv.lastCkptSeq = m.Seq
	}
	return nil
}

func (v *view) chain(name string) *chainView {
	cv := v.chains[name]
	if cv == nil {
		cv = &chainView{}
		v.chains[name] = cv
	}
	return cv
}

// assetState is what the model reads of an asset record: the intent and
// its signature stay in the stream, for history and audit.
type assetState struct {
	Event  string         `json:"event"`
	Owner  common.Address `json:"owner"`
	Digest common.Hash    `json:"digest"`
	Node   string         `json:"node"`
}

// releasedMarker is how a nonce release spells itself; spends, the common
// case, are told apart without decoding.
var releasedMarker = []byte(`"released":true`)

// releasedNonce is the sequence of the release a spent nonce was freed
// by, the expectation its next spend must carry (0: never spent, or spent).
func (v *view) releasedNonce(key string) uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.released[key]
}

func (v *view) applyAsset(coll, item string, m store.Msg, rec *assetState) {
	key := coll + "/" + item
	a := v.assets[key]
	if a == nil {
		a = &Asset{Collection: coll, Item: item}
		v.assets[key] = a
		v.byCollection[coll] = append(v.byCollection[coll], key)
	} else if set := v.byOwner[a.Owner]; set != nil {
		delete(set, key)
	}
	ev := Event{Seq: m.Seq, Event: rec.Event, From: a.Owner, To: rec.Owner, Amount: 1, Digest: rec.Digest, Time: m.Time.UTC()}
	a.Owner, a.Seq = rec.Owner, m.Seq
	a.History = append(a.History, ev)
	set := v.byOwner[rec.Owner]
	if set == nil {
		set = map[string]struct{}{}
		v.byOwner[rec.Owner] = set
	}
	set[key] = struct{}{}
	v.unreceipted(rec.Digest, rec.Node, m.Seq)
}

// unreceipted notes an intent node applied at seq, until its receipt
// comes: an orphan if this node applied it, a stray if another did.
func (v *view) unreceipted(intent common.Hash, node string, seq uint64) {
	if intent == (common.Hash{}) || node == "" {
		return
	}
	if _, done := v.receipts[intent]; done {
		return
	}
	if node == v.node {
		v.orphans[intent] = max(v.orphans[intent], seq)
		return
	}
	st, ok := v.strays[intent]
	if !ok {
		st = stray{node: node, seen: time.Now()}
	}
	st.seq = max(st.seq, seq)
	v.strays[intent] = st
}

func (v *view) owner(coll, item string) (common.Address, uint64, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	a := v.assets[coll+"/"+item]
	if a == nil {
		return common.Address{}, 0, false
	}
	return a.Owner, a.Seq, true
}

func (v *view) balance(coll string, owner common.Address) (uint64, uint64) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if b := v.balances[coll][owner]; b != nil {
		return b.Balance, b.Seq
	}
	return 0, 0
}

func (v *view) floor(owner common.Address) uint64 {
	f, _ := v.floorSeq(owner)
	return f
}

func (v *view) floorSeq(owner common.Address) (uint64, uint64) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	f := v.floors[owner]
	return f.floor, f.seq
}

func (v *view) nextNonce(owner common.Address) uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return max(v.nonceNext[owner], v.floors[owner].floor)
}

func (v *view) walletAvatar(w common.Address) (string, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	a, ok := v.wallets[w]
	return a, ok
}

func (v *view) avatarAddresses(avatar string) ([]common.Address, common.Address) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return append([]common.Address(nil), v.avatarWallets[avatar]...), v.custodyRecs[avatar].Address
}

func (v *view) custody(avatar string) (custodyRecord, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	r, ok := v.custodyRecs[avatar]
	return r, ok
}

// Asset returns one unique item with its history.
func (l *Ledger) Asset(coll, item string) (Asset, error) {
	l.view.mu.RLock()
	defer l.view.mu.RUnlock()
	a := l.view.assets[coll+"/"+item]
	if a == nil {
		return Asset{}, missingf("asset %s/%s", coll, item)
	}
	out := *a
	out.History = append([]Event(nil), a.History...)
	return out, nil
}

// page returns up to limit keys after cursor from sorted keys, and the
// cursor of the next page ("" at the end).
func page(keys []string, after string, limit int) ([]string, string) {
	i := sort.SearchStrings(keys, after)
	if i < len(keys) && keys[i] == after {
		i++
	}
	end := min(len(keys), i+limit)
	next := ""
	if end < len(keys) {
		next = keys[end-1]
	}
	return keys[i:end], next
}

// AssetsOf lists the unique items an owner holds, by key, a page at a time:
// after is the cursor a previous page returned.
func (l *Ledger) AssetsOf(owner common.Address, after string, limit int) ([]Asset, string) {
	l.view.mu.RLock()
	defer l.view.mu.RUnlock()
	keys := make([]string, 0, len(l.view.byOwner[owner]))
	for k := range l.view.byOwner[owner] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return l.view.assetPage(keys, after, limit)
}

// AssetsIn lists a collection's unique items, a page at a time.
func (l *Ledger) AssetsIn(coll, after string, limit int) ([]Asset, string) {
	l.view.mu.RLock()
	defer l.view.mu.RUnlock()
	keys := append([]string(nil), l.view.byCollection[coll]...)
	sort.Strings(keys)
	return l.view.assetPage(keys, after, limit)
}

func (v *view) assetPage(keys []string, after string, limit int) ([]Asset, string) {
	sel, next := page(keys, after, limit)
	out := make([]Asset, 0, len(sel))
	for _, k := range sel {
		a := *v.assets[k]
		a.History = nil
		out = append(out, a)
	}
	return out, next
}

// BalancesOf lists an owner's non-zero balances.
func (l *Ledger) BalancesOf(owner common.Address) []Balance {
	l.view.mu.RLock()
	defer l.view.mu.RUnlock()
	out := []Balance{}
	for _, byOwner := range l.view.balances {
		if b := byOwner[owner]; b != nil && b.Balance > 0 {
			out = append(out, *b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Collection < out[j].Collection })
	return out
}

// BalancesIn lists a fungible collection's non-zero balances by owner, a
// page at a time (the cursor is the last owner's address).
func (l *Ledger) BalancesIn(coll, after string, limit int) ([]Balance, string) {
	l.view.mu.RLock()
	defer l.view.mu.RUnlock()
	keys := []string{}
	for addr, b := range l.view.balances[coll] {
		if b.Balance > 0 {
			keys = append(keys, addrToken(addr))
		}
	}
	sort.Strings(keys)
	sel, next := page(keys, strings.ToLower(after), limit)
	out := make([]Balance, 0, len(sel))
	for _, k := range sel {
		out = append(out, *l.view.balances[coll][common.HexToAddress(k)])
	}
	return out, next
}

// ReceiptFor returns the receipt of an applied intent by the intent's
// digest, or by the receipt's own digest.
func (l *Ledger) ReceiptFor(digest common.Hash) (SignedReceipt, error) {
	if r, ok := l.receiptOf(digest); ok {
		return r, nil
	}
	return SignedReceipt{}, missingf("no receipt for %s", digest.Hex())
}

// receiptOf is ReceiptFor for the ledger's own checks, which expect a miss
// for every new intent and so have no use for the error it would build.
func (l *Ledger) receiptOf(digest common.Hash) (SignedReceipt, bool) {
	l.view.mu.RLock()
	defer l.view.mu.RUnlock()
	if r := l.view.receipts[digest]; r != nil {
		return *r, true
	}
	if r := l.view.byReceipt[digest]; r != nil {
		return *r, true
	}
	return SignedReceipt{}, false
}

// Receipts lists a chain's receipts from index first, at most limit.
func (l *Ledger) Receipts(chain string, first uint64, limit int) []SignedReceipt {
	l.view.mu.RLock()
	defer l.view.mu.RUnlock()
	cv := l.view.chains[chain]
	if cv == nil || first >= uint64(len(cv.receipts)) {
		return []SignedReceipt{}
	}
	end := min(uint64(len(cv.receipts)), first+uint64(limit))
	return append([]SignedReceipt(nil), cv.receipts[first:end]...)
}

// Chains lists the receipt chains (one per realm node that ever signed).
func (l *Ledger) Chains() []string {
	l.view.mu.RLock()
	defer l.view.mu.RUnlock()
	out := make([]string, 0, len(l.view.chains))
	for k := range l.view.chains {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Checkpoints lists a chain's checkpoints.
func (l *Ledger) Checkpoints(chain string) []SignedCheckpoint {
	l.view.mu.RLock()
	defer l.view.mu.RUnlock()
	cv := l.view.chains[chain]
	if cv == nil {
		return []SignedCheckpoint{}
	}
	return append([]SignedCheckpoint(nil), cv.checkpoints...)
}

// InclusionProof shows that a receipt is in a signed checkpoint.
type InclusionProof struct {
	Receipt    SignedReceipt
	Checkpoint SignedCheckpoint
	LeafIndex  uint64 // index of the receipt in the checkpoint's tree
	Path       []common.Hash
}

// Verify checks the proof's arithmetic: the receipt's digest, at its
// index, hashes up to the checkpoint's root. Signatures are checked by
// VerifyReceipt and VerifyCheckpoint.
func (p *InclusionProof) Verify() bool {
	c := p.Checkpoint.Checkpoint
	return p.Receipt.Receipt.Index == c.First+p.LeafIndex &&
		VerifyInclusion(p.Receipt.Digest, p.LeafIndex, c.Count, p.Path, c.Root)
}

// Proof returns the inclusion proof of a receipt (by intent or receipt
// digest), or ErrNotCheckpointed while its checkpoint is pending.
func (l *Ledger) Proof(digest common.Hash) (InclusionProof, error) {
	r, err := l.ReceiptFor(digest)
	if err != nil {
		return InclusionProof{}, err
	}
	l.view.mu.RLock()
	defer l.view.mu.RUnlock()
	cv := l.view.chains[r.Receipt.Chain]
	for _, c := range cv.checkpoints {
		cp := c.Checkpoint
		if r.Receipt.Index >= cp.First && r.Receipt.Index < cp.First+cp.Count {
			leaves := make([]common.Hash, cp.Count)
			for i := range leaves {
				leaves[i] = cv.receipts[cp.First+uint64(i)].Digest
			}
			path, err := MerkleProof(leaves, int(r.Receipt.Index-cp.First))
			if err != nil {
				return InclusionProof{}, err
			}
			return InclusionProof{Receipt: r, Checkpoint: c, LeafIndex: r.Receipt.Index - cp.First, Path: path}, nil
		}
	}
	return InclusionProof{}, fmt.Errorf("%w: receipt %d of chain %s", ErrNotCheckpointed, r.Receipt.Index, r.Receipt.Chain)
}
