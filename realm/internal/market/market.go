package market

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/idempotency"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
)

// Config is what the marketplace reads of the realm's configuration.
// Zero values are the documented defaults of the realm's AssetsConfig.
type Config struct {
	// ChainID and VerifyingContract (EIP-55 hex, validated by the realm)
	// of the EIP-712 domain.
	ChainID           uint64
	VerifyingContract string
	// HighValue is the amount from which a fungible transfer is high
	// value for the scene policies; default 10000.
	HighValue uint64
	// AdminRole may mint through the API; default "admin".
	AdminRole string
	// CheckpointEvery and CheckpointInterval pace the signed checkpoints.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// CustodyScryptN is the scrypt cost of custodial key files; 0 means
	// the ledger's default.
	CustodyScryptN int
	// Now is the ledger's clock; default time.Now.
	Now func() time.Time
}

// Problems says what is wrong with c, one line each, for the realm to
// refuse to start with (ChainID and HighValue take any value).
func (c Config) Problems() []string {
	var p []string
	if c.VerifyingContract != "" {
		if _, err := assets.ParseAddress(c.VerifyingContract); err != nil {
			p = append(p, fmt.Sprintf("assets verifying contract: %v", err))
		}
	}
	if c.CustodyScryptN != 0 && !powerOfTwo(c.CustodyScryptN) {
		p = append(p, fmt.Sprintf("assets custody scrypt N %d: want a power of two", c.CustodyScryptN))
	}
	if c.CheckpointEvery < 0 || c.CheckpointInterval < 0 {
		p = append(p, "assets checkpoint settings must not be negative")
	}
	return p
}

// powerOfTwo reports whether n is a power of two of at least 2, as scrypt
// wants its cost.
func powerOfTwo(n int) bool { return n >= 2 && n&(n-1) == 0 }

// Decider asks a scene's policy whether p may act, and returns only once
// the decision is stored in the audit log; a non-nil error means it is
// not, and the caller must not act on the decision.
type Decider interface {
	DecideAndWait(ctx context.Context, sc *scenes.Scene, p edge.Principal, a trust.Assessment, action string, resource policy.UID, extra map[string]any, entities ...policy.Entity) (policy.Decision, error)
}

// TrustReader is a session's trust now.
type TrustReader interface {
	Assess(ctx context.Context, sess session.Session) trust.Assessment
}

// StepUps spends a session's passkey step-up for exactly digest, or
// refuses (with a problem that says how to get one).
type StepUps interface {
	Consume(ctx context.Context, sessionID string, digest []byte) error
}

// Auditor queues a decision taken while serving req for the audit log and
// returns without waiting for it to be stored: the market uses it only
// for refusals and for effects that already happened.
type Auditor interface {
	AllowQueued(req *http.Request, actor, action, resource, reason string, signals map[string]any)
	DenyQueued(req *http.Request, actor, action, resource string, cause error)
}

// KeyLister lists the node key ring's keys, oldest first, without
// decrypting them.
type KeyLister interface {
	List() ([]assets.KeyInfo, error)
}

// Deps is what New needs from the rest of the node.
type Deps struct {
	Config Config
	// Node names this node's receipt chain and its signers entry.
	Node string
	// Store holds the ledger, the idempotency keys and the signers.
	Store *store.Store
	// Scenes are the catalog's scenes; their collections are the ledger's.
	Scenes []*scenes.Scene
	// Signer is the key ring's active key, which countersigns receipts
	// and checkpoints; Passphrase encrypts custodial keys; Keys lists the
	// ring's keys for the published signers.
	Signer     *ecdsa.PrivateKey
	Passphrase string
	Keys       KeyLister
	// HeadFile keeps the head of this node's receipt chain outside NATS
	// (the realm's DataDir/HeadFile).
	HeadFile string
	// RolledBack is told when the ledger lacks receipts this node signed
	// (the start then fails with assets.ErrRolledBack).
	RolledBack func()

	Decider Decider
	Trust   TrustReader
	StepUps StepUps
	Auditor Auditor
	Logger  *slog.Logger
	// TransferTimed, when set, is told how long each transfer or trade took
	// from its signed intent to the answer: kind transfer or trade, outcome
	// receipt, replayed or refused.
	TransferTimed func(kind, outcome string, took time.Duration)
}

// ErrMissingDeps: New was not given a dependency it cannot run without.
var ErrMissingDeps = errors.New("market: missing dependencies")

// check names every dependency New cannot run without, rather than let
// the first request that needs it fail.
func (d *Deps) check() error {
	var missing []string
	for name, absent := range map[string]bool{
		"Store": d.Store == nil, "Signer": d.Signer == nil, "Keys": d.Keys == nil, "Passphrase": d.Passphrase == "",
		"Decider": d.Decider == nil, "Trust": d.Trust == nil, "StepUps": d.StepUps == nil, "Auditor": d.Auditor == nil,
	} {
		if absent {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return fmt.Errorf("%w: %s", ErrMissingDeps, strings.Join(missing, ", "))
}

// Service is this node's marketplace: the ledger, which scene each
// collection belongs to, the idempotency keys of transfer requests and
// the published receipt signers.
type Service struct {
	node        string
	log         *slog.Logger
	ledger      *assets.Ledger
	scheme      *assets.Scheme
	idempotency *idempotency.Keys
	signers     *store.Bucket            // every node's receipt signers; see signers.go
	badSigners  badSignerLog             // which bad signers entries were warned of
	scenes      map[string]*scenes.Scene // collection -> scene
	highValue   uint64
	adminRole   string

	decider Decider
	trust   TrustReader
	stepUps StepUps
	audit   Auditor
	// transferTimed: Deps.TransferTimed, or nil.
	transferTimed func(kind, outcome string, took time.Duration)
	agents        AgentDeps
	now           func() time.Time // Config.Now: the ledger's clock
}

// BindAgents gives the marketplace what agents' transfers need (see
// agents.go). The composition root calls it once, during start-up,
// before the realm reports ready; until then an agent's transfer is
// refused.
func (s *Service) BindAgents(d AgentDeps) { s.agents = d }

// idempotencyTTL is how long an Idempotency-Key is remembered.
const idempotencyTTL = 24 * time.Hour

// New opens the ledger over the scenes' collections and publishes this
// node's receipt signers. Close releases the ledger.
func New(ctx context.Context, d Deps) (*Service, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	cfg := d.Config
	s := &Service{
		node: d.Node, log: d.Logger, scenes: map[string]*scenes.Scene{},
		highValue: cfg.HighValue, adminRole: cfg.AdminRole,
		decider: d.Decider, trust: d.Trust, stepUps: d.StepUps, audit: d.Auditor,
		transferTimed: d.TransferTimed, now: cfg.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.highValue == 0 {
		s.highValue = 10000
	}
	if s.adminRole == "" {
		s.adminRole = "admin"
	}
	var colls []assets.Collection
	for _, sc := range d.Scenes {
		for _, c := range sc.Collections {
			if other, dup := s.scenes[c.ID]; dup {
				return nil, fmt.Errorf("realm: collection %q is declared by scenes %s and %s: collection ids are realm-wide", c.ID, other.ID, sc.ID)
			}
			s.scenes[c.ID] = sc
			ac, err := ledgerCollection(sc.ID, c)
			if err != nil {
				return nil, fmt.Errorf("realm: scene %s: %w", sc.ID, err)
			}
			colls = append(colls, ac)
		}
	}
	var contract common.Address
	if cfg.VerifyingContract != "" {
		var err error
		if contract, err = assets.ParseAddress(cfg.VerifyingContract); err != nil {
			return nil, fmt.Errorf("realm: assets verifying contract: %w", err)
		}
	}
	ledger, err := assets.New(ctx, d.Store, assets.Config{
		Node:               d.Node,
		Collections:        colls,
		Domain:             assets.Domain{ChainID: cfg.ChainID, VerifyingContract: contract},
		Signer:             d.Signer,
		Passphrase:         d.Passphrase,
		CheckpointEvery:    cfg.CheckpointEvery,
		CheckpointInterval: cfg.CheckpointInterval,
		CustodyScryptN:     cfg.CustodyScryptN,
		Now:                s.now,
		Logger:             s.log,
		HeadFile:           d.HeadFile,
	})
	if errors.Is(err, assets.ErrRolledBack) && d.RolledBack != nil {
		d.RolledBack()
	}
	if err != nil {
		return nil, fmt.Errorf("realm: asset ledger: %w", err)
	}
	s.ledger, s.scheme = ledger, ledger.Scheme()
	// The leader confirms a replica's "not found": a key whose Create just
	// conflicted exists, and a replica that restarted a moment ago may not
	// have it yet (a retried transfer answered 404 after a lost quorum).
	bucket, err := d.Store.Bucket(ctx, store.BucketConfig{Name: "idempotency", TTL: idempotencyTTL, Sealed: true, LeaderConfirmsAbsence: true})
	if err != nil {
		ledger.Close()
		return nil, fmt.Errorf("realm: idempotency keys: %w", err)
	}
	s.idempotency = idempotency.New(bucket, "assets")
	s.log.Info("asset ledger ready", "signer", ledger.Signer().Hex(), "treasury", ledger.Treasury().Hex(), "domain", s.scheme.Domain().String())
	if err := s.publishSigners(ctx, d.Store, d.Keys); err != nil {
		ledger.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the ledger's checkpoints and head writer.
func (s *Service) Close() { s.ledger.Close() }

// Ledger is the node's asset ledger.
func (s *Service) Ledger() *assets.Ledger { return s.ledger }

func ledgerCollection(scene string, c scenes.Collection) (assets.Collection, error) {
	out := assets.Collection{ID: c.ID, Scene: scene, Name: c.Name, Kind: assets.Kind(c.Kind), Soulbound: c.Soulbound, Decimals: c.Decimals}
	owner := func(s string) (common.Address, error) {
		if s == scenes.RealmOwner {
			return common.Address{}, nil // the treasury
		}
		return assets.ParseAddress(s)
	}
	for _, it := range c.Items {
		a, err := owner(it.Owner)
		if err != nil {
			return out, fmt.Errorf("collection %s item %s: %w", c.ID, it.ID, err)
		}
		out.Items = append(out.Items, assets.ItemMint{ID: it.ID, Owner: a})
	}
	for _, m := range c.Mints {
		a, err := owner(m.To)
		if err != nil {
			return out, fmt.Errorf("collection %s mint: %w", c.ID, err)
		}
		if !m.Amount.IsUint64() || m.Amount.Uint64() > assets.MaxAmount {
			return out, fmt.Errorf("collection %s mints %s to %s: the ledger holds at most %d per address", c.ID, m.Amount, m.To, uint64(assets.MaxAmount))
		}
		out.Mints = append(out.Mints, assets.BalanceMint{To: a, Amount: m.Amount.Uint64()})
	}
	return out, nil
}

// HeadFile, in the node's data dir, keeps the head of this node's receipt
// chain outside NATS, so a start notices the ledger's newest records
// deleted (see assets.ErrRolledBack).
const HeadFile = "ledger-head"
