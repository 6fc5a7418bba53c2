package realm

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm/internal/market"
	"github.com/zerorealm/zerorealm/realm/internal/node"
)

// AssetsConfig configures the asset ledger and the marketplace API. Zero
// values are the documented defaults.
type AssetsConfig struct {
	// ChainID of the EIP-712 domain; default assets.DefaultChainID (23122),
	// which no public network uses.
	ChainID uint64
	// VerifyingContract of the EIP-712 domain, EIP-55 hex; default
	// assets.DefaultVerifyingContract.
	VerifyingContract string
	// KeyPassphrase encrypts the node's receipt-signing keys (DataDir/keys)
	// and the custodial keys. Default: the environment variable
	// ZR_KEY_PASSPHRASE (which `zerorealm keys` reads too), else
	// assets.DevPassphrase, for development only, with a warning in the
	// log at every start.
	KeyPassphrase string
	// KeyScryptN is the scrypt cost of the receipt-signing key file;
	// default keystore.LightScryptN, because every realm start decrypts
	// it. Deployments whose data directory may leak set
	// keystore.StandardScryptN (a second and 256 MiB per start).
	KeyScryptN int
	// CustodyScryptN is the scrypt cost of the custodial key files kept
	// in the ledger; default keystore.LightScryptN. Each custodial
	// wallet's creation pays it once, within its request's deadline.
	CustodyScryptN int
	// HighValue is the amount (base units) from which a transfer is high
	// value for the scene policies (context.high_value); default 10000.
	HighValue uint64
	// CheckpointEvery and CheckpointInterval: a checkpoint is signed every
	// so many receipts, and at least this often while receipts are
	// pending; defaults 1024 and 10s.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// AdminRole may mint through the API; default "admin".
	AdminRole string
	// Now is the ledger's clock: intent deadlines, receipt times and the
	// velocity windows (context.velocity); default time.Now.
	Now func() time.Time
}

// problems are the marketplace's (market.Config.Problems) and the node
// keys' scrypt cost's.
func (c *AssetsConfig) problems() []string {
	p := c.market().Problems()
	if c.KeyScryptN != 0 && (c.KeyScryptN < 2 || c.KeyScryptN&(c.KeyScryptN-1) != 0) {
		p = append(p, fmt.Sprintf("assets key scrypt N %d: want a power of two", c.KeyScryptN))
	}
	return p
}

// market is the marketplace's part of the settings.
func (c *AssetsConfig) market() market.Config {
	return market.Config{
		ChainID:            c.ChainID,
		VerifyingContract:  c.VerifyingContract,
		HighValue:          c.HighValue,
		AdminRole:          c.AdminRole,
		CheckpointEvery:    c.CheckpointEvery,
		CheckpointInterval: c.CheckpointInterval,
		CustodyScryptN:     c.CustodyScryptN,
		Now:                c.Now,
	}
}

// openMarket opens the marketplace (realm/internal/market) with the node's
// active key, after the audit log, trust and step-ups (startIdentity) it
// depends on.
func (r *Realm) openMarket(ctx context.Context) (*market.Service, error) {
	return market.New(ctx, market.Deps{
		TransferTimed: r.timings.Transfer,
		Config:        r.cfg.Assets.market(),
		Node:          r.cfg.Node,
		Store:         r.store,
		Scenes:        r.catalog.Scenes(),
		Signer:        r.keys.Active,
		Passphrase:    r.keys.Passphrase,
		Keys:          r.keys.Ring,
		HeadFile:      filepath.Join(r.cfg.DataDir, market.HeadFile),
		RolledBack: func() {
			r.tampers.Report(store.TamperEvent{Stream: "LEDGER", Key: "ledger.receipts." + r.cfg.Node, Reason: node.ReasonLedgerRolledBack})
		},
		Decider: r.decisions,
		Trust:   r.trust,
		StepUps: r.stepups,
		Auditor: r.decisions,
		Logger:  r.log,
	})
}
