package assets

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/store"
)

// Kind says how a collection counts its assets.
type Kind string

// The collection kinds.
const (
	Unique   Kind = "unique"   // distinct items with one owner each (ERC-721 like)
	Fungible Kind = "fungible" // balances of interchangeable units (ERC-1155 like)
)

// Collection is what the ledger needs to know of a scene's collection.
type Collection struct {
	ID        string
	Scene     string
	Name      string
	Kind      Kind
	Soulbound bool
	Decimals  uint8
	Items     []ItemMint    // unique: initial owners
	Mints     []BalanceMint // fungible: initial balances
}

// ItemMint is the initial owner of a unique item; the zero address is
// the realm treasury.
type ItemMint struct {
	ID    string
	Owner common.Address
}

// BalanceMint is an initial balance of a fungible collection; the zero
// address is the realm treasury.
type BalanceMint struct {
	To     common.Address
	Amount uint64
}

// Config configures a Ledger. Zero values are the documented defaults.
type Config struct {
	// Node names this node's receipt chain. Required.
	Node string
	// Collections are every scene's collections. Ids are unique.
	Collections []Collection
	// Domain of every signature; zero fields take the defaults of NewScheme.
	Domain Domain
	// Signer signs this node's receipts and checkpoints. Required.
	Signer *ecdsa.PrivateKey
	// Passphrase encrypts custodial keys. Required.
	Passphrase string
	// CustodyScryptN is the scrypt cost of custodial key files; default
	// keystore.LightScryptN. They are decrypted on use (then cached), so
	// the standard cost of a second per key would stall transfers.
	CustodyScryptN int
	// ReceiptBatch is the most receipts one chain block holds; default 512.
	ReceiptBatch int
	// CheckpointEvery receipts a checkpoint is signed; default 1024.
	CheckpointEvery int
	// CheckpointInterval signs a checkpoint of whatever is pending at
	// least this often; default 10s.
	CheckpointInterval time.Duration
	// Now is the clock for deadlines and receipt times; default Clock's.
	Now func() time.Time
	// Clock paces the checkpoint loop (CheckpointInterval); default the
	// system's. With a manual clock, a checkpoint of what is pending is
	// signed when the clock passes the interval.
	Clock clock.Clock
	// Logger; default discards.
	Logger *slog.Logger
	// ReconcileInterval is how often the node receipts intents it applied
	// whose receipt is missing (see reconcile.go); default 2s. An orphan
	// waits between one and two intervals.
	ReconcileInterval time.Duration
	// AdoptAfter is how long an intent another node applied may go
	// without a receipt before this node's reconciler issues it (that
	// node is gone, or stopped before receipting it); default 30s. It
	// must exceed by far how long a node takes to receipt what it just
	// applied (see reconcile.go).
	AdoptAfter time.Duration
	// HeadFile, outside NATS, keeps the head of this node's receipt
	// chain; a start that finds the ledger without that receipt fails
	// with ErrRolledBack (see head.go). Empty: not kept.
	HeadFile string
}

// Subjects of the LEDGER stream, relative to the store's prefix.
const (
	subjAsset      = "ledger.asset."      // <collection>.<item>: owner after each event
	subjBalance    = "ledger.balance."    // <collection>.<address>: balance after each event
	subjNonce      = "ledger.nonce."      // <address>.<nonce>: spent nonces (expectation 0)
	subjFloor      = "ledger.floor."      // <address>: nonce floor (cancellations)
	subjWallet     = "ledger.wallet."     // <address>: the avatar a wallet is linked to (expectation 0)
	subjCustody    = "ledger.custody."    // <avatar>: the avatar's custodial key, encrypted (expectation 0)
	subjReceipts   = "ledger.receipts."   // <node>: blocks of the node's receipt chain
	subjCheckpoint = "ledger.checkpoint." // <node>: the node's checkpoints
	subjVelocity   = "ledger.velocity."   // <collection>.<holder>: outgoing fungible transfers, for velocity (velocity.go)
	subjClaim      = "ledger.claim."      // <intent digest, hex>: the node that issues a late receipt (expectation 0, reconcile.go)
)

// Ledger is the asset ledger on one realm node. Safe for concurrent use.
type Ledger struct {
	cfg      Config
	scheme   *Scheme
	stream   *store.Stream
	log      *slog.Logger
	signer   common.Address
	treasury common.Address
	colls    map[string]*Collection

	view     *view
	follower *store.Follower
	head     *headWriter // nil without Config.HeadFile
	chain    *chain

	custodyMu sync.Mutex
	custodial map[string]*ecdsa.PrivateKey // avatar -> decrypted key

	cancel context.CancelFunc
	done   sync.WaitGroup
}

// New declares the LEDGER stream, builds the read model from it, mints
// the collections' initial assets (idempotently: every node tries, the
// first append wins) and starts the node's receipt chain.
func New(ctx context.Context, st *store.Store, cfg Config) (*Ledger, error) {
	if cfg.Node == "" || !validToken(cfg.Node) {
		return nil, invalidf("node name %q", cfg.Node)
	}
	if cfg.Signer == nil {
		return nil, invalidf("no receipt signing key")
	}
	if cfg.Passphrase == "" {
		return nil, invalidf("no custodial key passphrase")
	}
	if cfg.CustodyScryptN == 0 {
		cfg.CustodyScryptN = keystore.LightScryptN
	}
	if cfg.ReceiptBatch <= 0 {
		cfg.ReceiptBatch = 512
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 1024
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = 10 * time.Second
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = defaultReconcileInterval
	}
	if cfg.AdoptAfter <= 0 {
		cfg.AdoptAfter = defaultAdoptAfter
	}
	if cfg.Clock = clock.Or(cfg.Clock); cfg.Now == nil {
		cfg.Now = cfg.Clock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Ledger{
		cfg:       cfg,
		scheme:    NewScheme(cfg.Domain),
		log:       cfg.Logger,
		signer:    crypto.PubkeyToAddress(cfg.Signer.PublicKey),
		colls:     map[string]*Collection{},
		custodial: map[string]*ecdsa.PrivateKey{},
	}
	for i := range cfg.Collections {
		c := &cfg.Collections[i]
		if !ValidID(c.ID) || (c.Kind != Unique && c.Kind != Fungible) {
			return nil, invalidf("collection %q of kind %q", c.ID, c.Kind)
		}
		if _, dup := l.colls[c.ID]; dup {
			return nil, invalidf("collection %q is declared twice (collection ids are realm-wide)", c.ID)
		}
		l.colls[c.ID] = c
	}
	var err error
	l.stream, err = st.Stream(ctx, store.StreamConfig{Name: "LEDGER", Subjects: []string{"ledger.>"}, AllowAtomic: true, Sealed: true})
	if err != nil {
		return nil, fmt.Errorf("assets: ledger stream: %w", err)
	}
	l.view = newView(cfg.Node, l.scheme)
	bg, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.follower, err = l.stream.Follow(bg, "ledger.>", l.view.apply)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("assets: ledger projection: %w", err)
	}
	if l.treasury, err = l.Custodial(ctx, TreasuryAccount); err != nil {
		l.Close()
		return nil, fmt.Errorf("assets: treasury key: %w", err)
	}
	if err := l.mintCatalog(ctx); err != nil {
		l.Close()
		return nil, err
	}
	l.chain = newChain(l)
	if err := l.chain.resume(ctx); err != nil {
		l.Close()
		return nil, err
	}
	if cfg.HeadFile != "" {
		if err := l.checkHead(); err != nil {
			l.Close()
			return nil, err
		}
		l.head = startHeadWriter(cfg.HeadFile, l.log)
	}
	l.done.Add(2)
	go func() { defer l.done.Done(); l.chain.run(bg) }()
	go func() { defer l.done.Done(); l.checkpointLoop(bg) }()
	// What a crash left out is receipted before the node serves; what
	// fails later, by the reconciler.
	if n, err := l.receiptOrphans(ctx, l.orphanList()); err != nil {
		l.log.Error("receipts for intents applied before a restart: some still missing; the reconciler retries", "issued", n, "err", err)
	} else if n > 0 {
		l.log.Info("issued receipts for intents applied before a restart", "count", n)
	}
	l.done.Add(1)
	go func() { defer l.done.Done(); l.reconcileLoop(bg) }()
	return l, nil
}

// Close stops the receipt chain and the projection.
func (l *Ledger) Close() {
	if l.cancel != nil {
		l.cancel()
	}
	l.done.Wait()
	if l.head != nil {
		l.head.close()
		l.head = nil
	}
	if l.follower != nil {
		l.follower.Stop()
	}
}

// Scheme is the ledger's EIP-712 scheme.
func (l *Ledger) Scheme() *Scheme { return l.scheme }

// TreasuryAccount is the custodial account of the realm itself: the owner
// scene catalogs call "realm". Its key is created by the first node that
// starts and shared, encrypted, through the ledger, so every node mints to
// and spends from the same address.
const TreasuryAccount = "treasury"

// Treasury is the realm treasury's address.
func (l *Ledger) Treasury() common.Address { return l.treasury }

// Signer is the address that signs this node's receipts.
func (l *Ledger) Signer() common.Address { return l.signer }

// Node names this node's receipt chain.
func (l *Ledger) Node() string { return l.cfg.Node }

// Collection returns a collection by id.
func (l *Ledger) Collection(id string) (*Collection, bool) {
	c, ok := l.colls[id]
	return c, ok
}

// Collections lists the collections by id.
func (l *Ledger) Collections() []*Collection {
	out := make([]*Collection, 0, len(l.colls))
	for _, c := range l.colls {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// WaitApplied waits until this node's read model includes seq.
func (l *Ledger) WaitApplied(ctx context.Context, seq uint64) error {
	return l.follower.WaitApplied(ctx, seq)
}

func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// addrToken is the address in lower-case hex, as subjects spell it: the
// checksummed form (Hex) costs a keccak only to be lowered again.
func addrToken(a common.Address) string {
	var b [2 + 2*common.AddressLength]byte
	b[0], b[1] = '0', 'x'
	hex.Encode(b[2:], a[:])
	return string(b[:])
}

func assetSubject(coll, item string) string { return subjAsset + coll + "." + item }
func balanceSubject(coll string, owner common.Address) string {
	return subjBalance + coll + "." + addrToken(owner)
}
func nonceSubject(owner common.Address, nonce uint64) string {
	return subjNonce + addrToken(owner) + "." + strconv.FormatUint(nonce, 10)
}

// attemptID makes each attempt's message id unique: a lost ack is retried
// under the same id (the store settles it), but a second submission of the
// same intent is a new attempt, and so a replay, not a duplicate.
func attemptID(digest common.Hash) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return digest.Hex()[2:18] + "-" + hex.EncodeToString(b[:])
}

// Records of the LEDGER stream.
type (
	assetRecord struct {
		Event     string           `json:"event"` // mint, transfer, trade
		Owner     common.Address   `json:"owner"`
		Digest    common.Hash      `json:"digest,omitempty"` // the intent's (transfer or trade) EIP-712 digest
		Intent    *TransferMessage `json:"intent,omitempty"`
		Signature string           `json:"signature,omitempty"`
		Node      string           `json:"node,omitempty"`
	}
	balanceRecord struct {
		Event     string           `json:"event"` // mint, transfer, trade
		Balance   uint64           `json:"balance"`
		Delta     int64            `json:"delta"`
		Digest    common.Hash      `json:"digest,omitempty"`
		Intent    *TransferMessage `json:"intent,omitempty"`
		Signature string           `json:"signature,omitempty"`
		Node      string           `json:"node,omitempty"`
	}
	nonceRecord struct {
		Digest common.Hash `json:"digest"`
		// Released frees the nonce again: the intent that spent it was
		// refused before anything else was written.
		Released bool `json:"released,omitempty"`
	}
	floorRecord struct {
		Floor     uint64 `json:"floor"`
		Signature string `json:"signature"`
	}
	walletRecord struct {
		Avatar    string `json:"avatar"`
		Signature string `json:"signature"`
		Deadline  uint64 `json:"deadline"`
	}
	custodyRecord struct {
		Avatar   string          `json:"avatar"`
		Address  common.Address  `json:"address"`
		Keystore json.RawMessage `json:"keystore"`
	}
)

// appendAssetRecord encodes rec exactly as encoding/json does (a test
// holds the two equal), without reflection: every unique transfer writes
// one.
func appendAssetRecord(dst []byte, rec *assetRecord) []byte {
	dst = append(dst, `{"event":`...)
	dst = appendJSONString(dst, rec.Event)
	dst = append(dst, `,"owner":"`...)
	dst = appendHex(dst, rec.Owner[:])
	dst = append(dst, `","digest":"`...)
	dst = appendHex(dst, rec.Digest[:])
	dst = append(dst, '"')
	if m := rec.Intent; m != nil {
		dst = append(dst, `,"intent":{"collection":`...)
		dst = appendJSONString(dst, m.Collection)
		dst = append(dst, `,"assetId":`...)
		dst = appendJSONString(dst, m.AssetID)
		dst = append(dst, `,"amount":"`...)
		dst = strconv.AppendUint(dst, uint64(m.Amount), 10)
		dst = append(dst, `","from":`...)
		dst = appendJSONString(dst, m.From)
		dst = append(dst, `,"to":`...)
		dst = appendJSONString(dst, m.To)
		dst = append(dst, `,"nonce":"`...)
		dst = strconv.AppendUint(dst, uint64(m.Nonce), 10)
		dst = append(dst, `","deadline":"`...)
		dst = strconv.AppendUint(dst, uint64(m.Deadline), 10)
		dst = append(dst, `"}`...)
	}
	if rec.Signature != "" {
		dst = append(dst, `,"signature":`...)
		dst = appendJSONString(dst, rec.Signature)
	}
	if rec.Node != "" {
		dst = append(dst, `,"node":`...)
		dst = appendJSONString(dst, rec.Node)
	}
	return append(dst, '}')
}

// mintCatalog appends each initial asset with expectation 0, so of all the
// nodes starting at once exactly one mints it and restarts mint nothing.
func (l *Ledger) mintCatalog(ctx context.Context) error {
	var maxSeq uint64
	var minted []string // subjects another node minted first
	settle := func(subject string, seq uint64, err error) error {
		switch {
		case errors.Is(err, ErrConflict):
			minted = append(minted, subject)
			return nil
		case err != nil:
			return err
		}
		maxSeq = max(maxSeq, seq)
		return nil
	}
	for _, c := range l.Collections() {
		for _, it := range c.Items {
			owner := it.Owner
			if owner == (common.Address{}) {
				owner = l.treasury
			}
			seq, err := l.appendJSON(ctx, assetSubject(c.ID, it.ID), assetRecord{Event: "mint", Owner: owner}, 0)
			if err := settle(assetSubject(c.ID, it.ID), seq, err); err != nil {
				return err
			}
		}
		sums := map[common.Address]uint64{}
		for _, m := range c.Mints {
			if m.To == (common.Address{}) {
				m.To = l.treasury
			}
			if m.Amount > MaxAmount || sums[m.To]+m.Amount > MaxAmount {
				return invalidf("collection %s mints more than %d to %s", c.ID, uint64(MaxAmount), m.To.Hex())
			}
			sums[m.To] += m.Amount
		}
		for to, amount := range sums {
			rec := balanceRecord{Event: "mint", Balance: amount, Delta: int64(amount)}
			seq, err := l.appendJSON(ctx, balanceSubject(c.ID, to), rec, 0)
			if err := settle(balanceSubject(c.ID, to), seq, err); err != nil {
				return err
			}
		}
	}
	// Later checks read the model: it must hold every mint, ours or not.
	if err := l.follower.WaitApplied(ctx, maxSeq); err != nil {
		return err
	}
	for _, s := range minted {
		if err := l.catchUpSubject(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// Mint creates an asset outside the scene catalogs: a new unique item
// (refused if it exists), or amount more units of a fungible collection.
// It returns the ledger sequence.
func (l *Ledger) Mint(ctx context.Context, coll, item string, to common.Address, amount uint64) (uint64, error) {
	seq, err := l.mint(ctx, coll, item, to, amount)
	if err != nil {
		return 0, err
	}
	return seq, l.follower.WaitApplied(ctx, seq)
}

func (l *Ledger) mint(ctx context.Context, coll, item string, to common.Address, amount uint64) (uint64, error) {
	c, ok := l.colls[coll]
	if !ok {
		return 0, reject(ReasonUnknownCollection, "no collection %q", coll)
	}
	if c.Kind == Unique {
		if !ValidID(item) {
			return 0, reject(ReasonMalformed, "item id %q", item)
		}
		seq, err := l.appendJSON(ctx, assetSubject(coll, item), assetRecord{Event: "mint", Owner: to}, 0)
		if errors.Is(err, ErrConflict) {
			return 0, fmt.Errorf("%w: item %s/%s exists", ErrConflict, coll, item)
		}
		return seq, err
	}
	if amount == 0 || amount > MaxAmount {
		return 0, reject(ReasonAmountRange, "amount %d: want 1 to %d", amount, uint64(MaxAmount))
	}
	for range 5 {
		bal, seq := l.view.balance(coll, to)
		if bal+amount > MaxAmount {
			return 0, reject(ReasonAmountRange, "the balance would exceed %d", uint64(MaxAmount))
		}
		s, err := l.appendJSON(ctx, balanceSubject(coll, to), balanceRecord{Event: "mint", Balance: bal + amount, Delta: int64(amount)}, seq)
		if errors.Is(err, ErrConflict) {
			if err := l.catchUpSubject(ctx, balanceSubject(coll, to)); err != nil {
				return 0, err
			}
			continue
		}
		return s, err
	}
	return 0, fmt.Errorf("%w: balance of %s in %s kept changing", ErrConflict, to.Hex(), coll)
}

func (l *Ledger) appendJSON(ctx context.Context, subject string, v any, last uint64, opts ...store.AppendOption) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	return l.appendData(ctx, subject, data, last, opts...)
}

func (l *Ledger) appendData(ctx context.Context, subject string, data []byte, last uint64, opts ...store.AppendOption) (uint64, error) {
	seq, err := l.stream.AppendIfLast(ctx, subject, data, last, opts...)
	if errors.Is(err, store.ErrConflict) {
		return 0, fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return seq, err
}

// catchUpSubject waits until the read model has the subject's last
// message, after a compare-and-set found the model stale.
func (l *Ledger) catchUpSubject(ctx context.Context, subject string) error {
	// From the leader: a follower's copy can be as far behind as this
	// node's read model.
	m, err := l.stream.GetLast(ctx, subject, store.FromLeader())
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return l.follower.WaitApplied(ctx, m.Seq)
}

// checkIntent checks what needs no write: the collection, the deadline and
// the nonce floor.
func (l *Ledger) checkIntent(t *Transfer, field string) (*Collection, error) {
	c, ok := l.colls[t.Collection]
	if !ok {
		return nil, reject(ReasonUnknownCollection, "%s: no collection %q", field, t.Collection)
	}
	if c.Kind == Unique && t.AssetID == "" {
		return nil, reject(ReasonMalformed, "%s: collection %s holds unique items: name the assetId", field, c.ID)
	}
	if c.Kind == Fungible && t.AssetID != "" {
		return nil, reject(ReasonMalformed, "%s: collection %s is fungible: assetId must be empty", field, c.ID)
	}
	now := uint64(l.cfg.Now().Unix())
	if t.Deadline < now {
		return nil, reject(ReasonExpired, "%s: deadline %s has passed (now %s)", field,
			time.Unix(int64(min(t.Deadline, 1<<62)), 0).UTC().Format(time.RFC3339), time.Unix(int64(now), 0).UTC().Format(time.RFC3339))
	}
	if floor := l.view.floor(t.From); t.Nonce < floor {
		return nil, reject(ReasonNonceCancelled, "%s: nonce %d is below %s's nonce floor %d (cancelled)", field, t.Nonce, t.From.Hex(), floor)
	}
	return c, nil
}

// CheckDomain refuses a domain other than the realm's, naming what differs.
func (l *Ledger) CheckDomain(d *Domain) error {
	if d == nil {
		return nil
	}
	want := l.scheme.domain
	switch {
	case d.ChainID != want.ChainID:
		return reject(ReasonWrongDomain, "signed for chain id %d, the realm's is %d", d.ChainID, want.ChainID)
	case d.Name != want.Name || d.Version != want.Version:
		return reject(ReasonWrongDomain, "signed for domain %q version %q, the realm's is %q version %q", d.Name, d.Version, want.Name, want.Version)
	case d.VerifyingContract != want.VerifyingContract:
		return reject(ReasonWrongDomain, "signed for verifying contract %s, the realm's is %s", d.VerifyingContract.Hex(), want.VerifyingContract.Hex())
	}
	return nil
}

// Check is what Transfer and Trade tell the realm's policy before they
// write anything: the collection of each leg and, for a fungible leg, its
// holder's velocity with the leg counted (nil for a unique leg). When a
// transfer of the same holder lands between the decision and the write,
// the write fails and the transfer is decided again: authorize may be
// called more than once.
type Check struct {
	Legs     []*Collection
	Velocity []*Velocity
}

// Transfer applies one signed transfer and returns its receipt. sig must be
// the owner's (a custodial signature comes from SignCustodial). authorize
// runs after every check that needs no write and before any write; its
// error is returned as is. The owner's nonce is spent before the asset is
// written (two single-subject appends: an atomic batch costs two hundred
// times more); an intent whose asset changes in between fails with
// ErrConflict and its nonce is released, so only a crash between the two
// appends leaves a nonce spent by an intent that was not applied. A
// refused intent, like any signed one, stays valid until its deadline or
// a cancellation.
func (l *Ledger) Transfer(ctx context.Context, t Transfer, sig Signature, authorize func(context.Context, Check) error) (SignedReceipt, error) {
	return l.TransferPrepared(ctx, l.scheme.Prepare(t), sig, authorize)
}

// TransferPrepared is Transfer with the digest the caller already has
// (Scheme.Prepare). A transfer prepared under another scheme is hashed
// again under the ledger's.
func (l *Ledger) TransferPrepared(ctx context.Context, p PreparedTransfer, sig Signature, authorize func(context.Context, Check) error) (SignedReceipt, error) {
	digest, seq, err := l.applyTransfer(ctx, p, sig, authorize)
	if err != nil {
		return SignedReceipt{}, err
	}
	return l.receiptAndWait(ctx, digest, seq)
}

// applyTransfer is TransferPrepared up to its effect: it returns the
// intent's digest and the sequence it was applied at, without a receipt.
func (l *Ledger) applyTransfer(ctx context.Context, p PreparedTransfer, sig Signature, authorize func(context.Context, Check) error) (common.Hash, uint64, error) {
	t := p.t
	c, err := l.checkIntent(&t, "intent")
	if err != nil {
		return common.Hash{}, 0, err
	}
	digest := p.digest
	if p.scheme != l.scheme {
		digest = l.scheme.TransferDigest(&t)
	}
	if err := verifySigner(digest, sig, t.From, "the transfer"); err != nil {
		return common.Hash{}, 0, err
	}
	if err := l.checkHoldingFresh(ctx, &t, "intent"); err != nil {
		return common.Hash{}, 0, err
	}
	msg := MessageOf(&t)
	if c.Kind == Fungible {
		seq, err := l.applyDecided(ctx, digest, "transfer", []legWrite{{t: &t, msg: &msg, sig: sig}}, []*Collection{c}, authorize)
		return digest, seq, err
	}
	if authorize != nil {
		if err := authorize(ctx, Check{Legs: []*Collection{c}, Velocity: []*Velocity{nil}}); err != nil {
			return common.Hash{}, 0, err
		}
	}
	id := attemptID(digest)
	nonceSeq, err := l.spendNonce(ctx, &t, digest, id)
	if err != nil {
		return common.Hash{}, 0, err
	}
	rec := assetRecord{Event: "transfer", Owner: t.To, Digest: digest, Intent: &msg, Signature: sig.String(), Node: l.cfg.Node}
	data := appendAssetRecord(make([]byte, 0, 640), &rec)
	subject := assetSubject(t.Collection, t.AssetID)
	msgID := "a" + id
	l.view.sent(msgID, ownRecord{data: data, asset: assetState{Event: rec.Event, Owner: rec.Owner, Digest: rec.Digest, Node: rec.Node}})
	stored := false
	defer func() {
		if !stored {
			l.view.unsent(msgID)
		}
	}()
	for attempt := 0; ; attempt++ {
		owner, last, _ := l.view.owner(t.Collection, t.AssetID)
		if owner != t.From {
			l.releaseNonce(ctx, &t, digest, id, nonceSeq)
			return common.Hash{}, 0, fmt.Errorf("%w: %s/%s now belongs to %s", ErrConflict, t.Collection, t.AssetID, owner.Hex())
		}
		seq, err := l.appendData(ctx, subject, data, last, store.WithMsgID(msgID))
		if errors.Is(err, ErrConflict) && attempt == 0 {
			// The read model was behind: catch up and judge again.
			if err := l.catchUpSubject(ctx, subject); err != nil {
				return common.Hash{}, 0, err
			}
			continue
		}
		if errors.Is(err, ErrConflict) {
			l.releaseNonce(ctx, &t, digest, id, nonceSeq)
			return common.Hash{}, 0, err
		}
		if err != nil {
			// The asset may or may not have been written (a lost ack the
			// store could not settle): the nonce stays spent, which is safe.
			return common.Hash{}, 0, err
		}
		stored = true
		return digest, seq, nil
	}
}

// spendNonce appends the intent to its nonce's subject, expecting the
// subject empty, or ending with the release that freed it.
func (l *Ledger) spendNonce(ctx context.Context, t *Transfer, digest common.Hash, id string) (uint64, error) {
	subject := nonceSubject(t.From, t.Nonce)
	key := subject[len(subjNonce):]
	for attempt := 0; ; attempt++ {
		expect := l.view.releasedNonce(key)
		seq, err := l.appendJSON(ctx, subject, nonceRecord{Digest: digest}, expect, store.WithMsgID("n"+id))
		if err == nil {
			return seq, nil
		}
		if !errors.Is(err, ErrConflict) {
			return 0, err
		}
		if attempt == 0 {
			// A release this node has not applied yet frees it: catch up.
			if err := l.catchUpSubject(ctx, subject); err != nil {
				return 0, err
			}
			if l.view.releasedNonce(key) != expect {
				continue
			}
		}
		return 0, reject(ReasonNonceUsed, "nonce %d of %s is already spent (a replay, or another intent with the same nonce)", t.Nonce, t.From.Hex())
	}
}

// releaseNonce frees the nonce an intent spent when the intent was then
// refused with nothing else written, so that only a crash between the two
// appends burns a nonce. The release expects the spend to be the nonce's
// last message: nobody else can have written after it.
func (l *Ledger) releaseNonce(ctx context.Context, t *Transfer, digest common.Hash, id string, spent uint64) {
	rctx, cancel := store.Cleanup(ctx)
	defer cancel()
	subject := nonceSubject(t.From, t.Nonce)
	seq, err := l.appendJSON(rctx, subject, nonceRecord{Digest: digest, Released: true}, spent, store.WithMsgID("r"+id))
	if err == nil {
		err = l.follower.WaitApplied(rctx, seq)
	}
	if err != nil {
		l.log.Warn("nonce of a refused intent stays spent", "owner", t.From.Hex(), "nonce", t.Nonce, "err", err)
	}
}

// receiptAndWait gets the receipt of an intent applied at seq and waits
// until this node's read model shows both, so the caller reads its own
// write on the next request.
func (l *Ledger) receiptAndWait(ctx context.Context, digest common.Hash, seq uint64) (SignedReceipt, error) {
	r, blockSeq, err := l.chain.receipt(ctx, digest, seq)
	if err != nil {
		return SignedReceipt{}, err
	}
	if err := l.follower.WaitApplied(ctx, max(seq, blockSeq)); err != nil {
		return SignedReceipt{}, err
	}
	l.chain.forget(digest)
	return r, nil
}

// checkHolding checks, on the read model, that the leg's owner holds what
// it gives. The write's compare-and-set catches a stale model.
func (l *Ledger) checkHolding(t *Transfer, field string) error {
	if t.AssetID != "" {
		owner, _, ok := l.view.owner(t.Collection, t.AssetID)
		if !ok {
			return missingf("%s: no asset %s/%s", field, t.Collection, t.AssetID)
		}
		if owner != t.From {
			return reject(ReasonNotOwner, "%s: %s/%s belongs to %s, not %s", field, t.Collection, t.AssetID, owner.Hex(), t.From.Hex())
		}
		return nil
	}
	bal, _ := l.view.balance(t.Collection, t.From)
	if bal < t.Amount {
		return reject(ReasonInsufficient, "%s: %s holds %d of %s, the transfer moves %d", field, t.From.Hex(), bal, t.Collection, t.Amount)
	}
	return nil
}

// checkHoldingFresh is checkHolding, with a refusal confirmed against the
// store: this node's read model may not yet have applied a transfer made
// through another node a moment ago (the asset just arrived, the balance
// was just topped up). The subject's last message is read from the stream
// and applied before judging again, so a holder is never refused for
// this node's lag. An allow needs no such read: the write that follows is
// conditional on the subject's last sequence.
func (l *Ledger) checkHoldingFresh(ctx context.Context, t *Transfer, field string) error {
	err := l.checkHolding(t, field)
	if err == nil {
		return nil
	}
	subject := balanceSubject(t.Collection, t.From)
	if t.AssetID != "" {
		subject = assetSubject(t.Collection, t.AssetID)
	}
	if cerr := l.catchUpSubject(ctx, subject); cerr != nil {
		return err
	}
	return l.checkHolding(t, field)
}

type legWrite struct {
	t   *Transfer
	msg *TransferMessage
	sig Signature
}

// applyAtomic writes the legs' nonces and subjects in one atomic batch,
// each with the last sequence the read model knows, and the velocity
// records vel (of writes) with the expectations their sums were taken at.
// A stale expectation changes nothing; it is retried after catching up, as
// long as the legs still hold, unless a velocity subject moved: then the
// error is errVelocityMoved, for the caller to decide again.
func (l *Ledger) applyAtomic(ctx context.Context, digest common.Hash, event string, legs []legWrite, writes []*velocityWrite, vel []store.AtomicMsg) (uint64, error) {
	for attempt := 0; attempt < 4; attempt++ {
		msgs := append([]store.AtomicMsg(nil), vel...)
		var subjects []string
		for _, lg := range legs {
			data, _ := json.Marshal(nonceRecord{Digest: digest})
			subj := nonceSubject(lg.t.From, lg.t.Nonce)
			msgs = append(msgs, store.AtomicMsg{Subject: subj, Data: data, LastSeq: l.view.releasedNonce(subj[len(subjNonce):])})
		}
		// Balances may be touched by both legs: sum the deltas per subject.
		type delta struct {
			coll  string
			owner common.Address
			d     int64
			leg   *legWrite
		}
		var deltas []*delta
		find := func(coll string, owner common.Address) *delta {
			for _, d := range deltas {
				if d.coll == coll && d.owner == owner {
					return d
				}
			}
			d := &delta{coll: coll, owner: owner}
			deltas = append(deltas, d)
			return d
		}
		for i := range legs {
			lg := &legs[i]
			if err := l.checkHolding(lg.t, "leg"); err != nil {
				return 0, err
			}
			if lg.t.AssetID != "" {
				_, last, _ := l.view.owner(lg.t.Collection, lg.t.AssetID)
				rec := assetRecord{Event: event, Owner: lg.t.To, Digest: digest, Intent: lg.msg, Signature: lg.sig.String(), Node: l.cfg.Node}
				data, _ := json.Marshal(rec)
				subj := assetSubject(lg.t.Collection, lg.t.AssetID)
				msgs = append(msgs, store.AtomicMsg{Subject: subj, Data: data, LastSeq: last})
				subjects = append(subjects, subj)
				continue
			}
			from := find(lg.t.Collection, lg.t.From)
			from.d -= int64(lg.t.Amount)
			from.leg = lg
			to := find(lg.t.Collection, lg.t.To)
			to.d += int64(lg.t.Amount)
			if to.leg == nil {
				to.leg = lg
			}
		}
		for _, d := range deltas {
			bal, last := l.view.balance(d.coll, d.owner)
			next := int64(bal) + d.d
			if next < 0 {
				return 0, reject(ReasonInsufficient, "%s holds %d of %s, the intent takes %d", d.owner.Hex(), bal, d.coll, -d.d)
			}
			if uint64(next) > MaxAmount {
				return 0, reject(ReasonAmountRange, "the balance of %s in %s would exceed %d", d.owner.Hex(), d.coll, uint64(MaxAmount))
			}
			rec := balanceRecord{Event: event, Balance: uint64(next), Delta: d.d, Digest: digest, Intent: d.leg.msg, Signature: d.leg.sig.String(), Node: l.cfg.Node}
			data, _ := json.Marshal(rec)
			subj := balanceSubject(d.coll, d.owner)
			msgs = append(msgs, store.AtomicMsg{Subject: subj, Data: data, LastSeq: last})
			subjects = append(subjects, subj)
		}
		seqs, err := l.stream.AppendAtomic(ctx, msgs)
		if err == nil {
			return seqs[len(seqs)-1], nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return 0, err
		}
		if moved, err := l.velocityMoved(ctx, writes); err != nil || moved {
			if err == nil {
				err = errVelocityMoved
			}
			return 0, err
		}
		for _, lg := range legs {
			subj := nonceSubject(lg.t.From, lg.t.Nonce)
			// From the leader: a replica behind it would not show the
			// nonce spent, and the batch would be tried again for nothing.
			m, gerr := l.stream.GetLast(ctx, subj, store.FromLeader())
			if gerr == nil && !bytes.Contains(m.Data, releasedMarker) {
				return 0, reject(ReasonNonceUsed, "nonce %d of %s is already spent (a replay, or another intent with the same nonce)", lg.t.Nonce, lg.t.From.Hex())
			}
			subjects = append(subjects, subj) // a release to catch up on
		}
		for _, s := range subjects {
			if err := l.catchUpSubject(ctx, s); err != nil {
				return 0, err
			}
		}
	}
	return 0, fmt.Errorf("%w: the assets kept changing", ErrConflict)
}

// Trade applies both legs of a trade, or neither. Each signature is its
// leg's owner's over the trade digest.
func (l *Ledger) Trade(ctx context.Context, tr Trade, giveSig, takeSig Signature, authorize func(context.Context, Check) error) (SignedReceipt, error) {
	gc, err := l.checkIntent(&tr.Give, "give")
	if err != nil {
		return SignedReceipt{}, err
	}
	tc, err := l.checkIntent(&tr.Take, "take")
	if err != nil {
		return SignedReceipt{}, err
	}
	digest := l.scheme.TradeDigest(&tr)
	if err := verifySigner(digest, giveSig, tr.Give.From, "the trade's give leg"); err != nil {
		return SignedReceipt{}, err
	}
	if err := verifySigner(digest, takeSig, tr.Take.From, "the trade's take leg"); err != nil {
		return SignedReceipt{}, err
	}
	if err := l.checkHoldingFresh(ctx, &tr.Give, "give"); err != nil {
		return SignedReceipt{}, err
	}
	if err := l.checkHoldingFresh(ctx, &tr.Take, "take"); err != nil {
		return SignedReceipt{}, err
	}
	gm, tm := MessageOf(&tr.Give), MessageOf(&tr.Take)
	seq, err := l.applyDecided(ctx, digest, "trade", []legWrite{{t: &tr.Give, msg: &gm, sig: giveSig}, {t: &tr.Take, msg: &tm, sig: takeSig}}, []*Collection{gc, tc}, authorize)
	if err != nil {
		return SignedReceipt{}, err
	}
	return l.receiptAndWait(ctx, digest, seq)
}

// LinkWallet attaches wallet to avatar, given the wallet's signature over
// the LinkWallet message. A wallet belongs to one avatar for good: the
// first link wins on every node.
func (l *Ledger) LinkWallet(ctx context.Context, link LinkWallet, sig Signature) error {
	if link.Deadline < uint64(l.cfg.Now().Unix()) {
		return reject(ReasonExpired, "the link's deadline has passed")
	}
	if err := verifySigner(l.scheme.LinkDigest(&link), sig, link.Wallet, "the wallet link"); err != nil {
		return err
	}
	if owner, ok := l.view.walletAvatar(link.Wallet); ok {
		if owner == link.Avatar {
			return nil
		}
		return reject(ReasonWalletTaken, "wallet %s is linked to another avatar", link.Wallet.Hex())
	}
	seq, err := l.appendJSON(ctx, subjWallet+addrToken(link.Wallet), walletRecord{Avatar: link.Avatar, Signature: sig.String(), Deadline: link.Deadline}, 0)
	if errors.Is(err, ErrConflict) {
		if err := l.catchUpSubject(ctx, subjWallet+addrToken(link.Wallet)); err != nil {
			return err
		}
		if owner, _ := l.view.walletAvatar(link.Wallet); owner == link.Avatar {
			return nil
		}
		return reject(ReasonWalletTaken, "wallet %s is linked to another avatar", link.Wallet.Hex())
	}
	if err != nil {
		return err
	}
	return l.follower.WaitApplied(ctx, seq)
}

// CancelIntents raises the owner's nonce floor, given the owner's
// signature. A floor never goes down.
func (l *Ledger) CancelIntents(ctx context.Context, c CancelIntents, sig Signature) error {
	if c.Deadline < uint64(l.cfg.Now().Unix()) {
		return reject(ReasonExpired, "the cancellation's deadline has passed")
	}
	if err := verifySigner(l.scheme.CancelDigest(&c), sig, c.Owner, "the cancellation"); err != nil {
		return err
	}
	subject := subjFloor + addrToken(c.Owner)
	for range 5 {
		floor, last := l.view.floorSeq(c.Owner)
		if c.NonceFloor <= floor {
			return nil
		}
		seq, err := l.appendJSON(ctx, subject, floorRecord{Floor: c.NonceFloor, Signature: sig.String()}, last)
		if errors.Is(err, ErrConflict) {
			if err := l.catchUpSubject(ctx, subject); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		return l.follower.WaitApplied(ctx, seq)
	}
	return fmt.Errorf("%w: nonce floor of %s kept changing", ErrConflict, c.Owner.Hex())
}

// Addresses are the wallets linked to avatar and its custodial address
// (zero if it has none yet).
func (l *Ledger) Addresses(avatar string) (wallets []common.Address, custodial common.Address) {
	return l.view.avatarAddresses(avatar)
}

// Custodial returns the avatar's custodial address, creating the key on
// first use. The key is kept encrypted in the ledger, so any node can use
// it, and the first node to create it wins.
func (l *Ledger) Custodial(ctx context.Context, avatar string) (common.Address, error) {
	if _, addr := l.view.avatarAddresses(avatar); addr != (common.Address{}) {
		return addr, nil
	}
	if !validToken(avatar) {
		return common.Address{}, invalidf("avatar id %q", avatar)
	}
	priv, err := crypto.GenerateKey()
	if err != nil {
		return common.Address{}, err
	}
	ks, err := EncryptKey(priv, l.cfg.Passphrase, l.cfg.CustodyScryptN, keystore.LightScryptP)
	if err != nil {
		return common.Address{}, err
	}
	addr := crypto.PubkeyToAddress(priv.PublicKey)
	seq, err := l.appendJSON(ctx, subjCustody+avatar, custodyRecord{Avatar: avatar, Address: addr, Keystore: ks}, 0)
	if errors.Is(err, ErrConflict) {
		if err := l.catchUpSubject(ctx, subjCustody+avatar); err != nil {
			return common.Address{}, err
		}
		_, addr := l.view.avatarAddresses(avatar)
		return addr, nil
	}
	if err != nil {
		return common.Address{}, err
	}
	if err := l.follower.WaitApplied(ctx, seq); err != nil {
		return common.Address{}, err
	}
	l.custodyMu.Lock()
	l.custodial[avatar] = priv
	l.custodyMu.Unlock()
	return addr, nil
}

// SignCustodial signs digest with the avatar's custodial key. The realm
// calls it only after the avatar confirmed exactly this digest with a
// passkey step-up.
func (l *Ledger) SignCustodial(avatar string, digest common.Hash) (Signature, error) {
	l.custodyMu.Lock()
	priv := l.custodial[avatar]
	l.custodyMu.Unlock()
	if priv == nil {
		rec, ok := l.view.custody(avatar)
		if !ok {
			return Signature{}, missingf("avatar has no custodial key")
		}
		key, err := keystore.DecryptKey(rec.Keystore, l.cfg.Passphrase)
		if err != nil {
			return Signature{}, fmt.Errorf("%w: custodial key of %s: %w", ErrPassphrase, avatar, err)
		}
		priv = key.PrivateKey
		l.custodyMu.Lock()
		l.custodial[avatar] = priv
		l.custodyMu.Unlock()
	}
	return Sign(digest, priv)
}

// NextNonce is a nonce the owner has not used and that is not cancelled,
// as far as this node knows.
func (l *Ledger) NextNonce(owner common.Address) uint64 { return l.view.nextNonce(owner) }
