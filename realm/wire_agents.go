package realm

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"net/url"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/realm/internal/delegations"
)

// Agents (see agents/ and docs/agents.md): the guard that authenticates
// them at the edge and decides their actions, the keys whose root
// delegations it honours, and the delegations API.

// startAgents opens the guard (its sealed buckets and the revocation
// feed) and binds it into the edge; bg keeps the trusted roots current.
func (r *Realm) startAgents(ctx, bg context.Context) error {
	roots := &delegations.Roots{Set: agents.NewRootSet(), Published: r.publishedSigners, Log: r.log, Clock: r.cfg.Clock}
	for _, k := range []*ecdsa.PrivateKey{r.keys.Active, r.keys.Previous} {
		if k != nil {
			roots.Own = append(roots.Own, agents.KeySigner{Key: k}.Address())
		}
	}
	if err := roots.Refresh(ctx); err != nil {
		return fmt.Errorf("realm: agent roots: %w", err)
	}
	g, err := agents.New(ctx, agents.Config{Store: r.store, Roots: roots.Set, Logger: r.log, Clock: r.cfg.Clock})
	if err != nil {
		return fmt.Errorf("realm: agents: %w", err)
	}
	r.agents = g
	r.decisions.BindAgents(g)
	r.edge.BindAgents(g, r.publicBase)
	r.live.BindAgents(g.Revocations())
	records, err := r.store.Bucket(ctx, delegations.BucketConfig())
	if err != nil {
		return fmt.Errorf("realm: delegations: %w", err)
	}
	if err := r.delegations.Bind(delegations.Deps{
		Log: r.log, Signer: agents.KeySigner{Key: r.keys.Active}, StepUps: r.stepups,
		Revoker: g.Revocations(), Reinstater: g, AgentTrust: g, Records: records, AuditNoWait: r.decisions.RecordQueued,
		Background: bg, Go: r.bgDone.Go, Now: r.cfg.Clock.Now,
		Cascade: delegations.Cascade{Conn: r.nc, Prefix: r.cfg.Prefix, Node: r.cfg.Node, Auth: r.clusterAuth, Peers: r.otherNodes, OnRefused: r.refusedRevocation("agent revocation")},
	}); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	if err := r.bindMCP(); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	if err := r.startApprovals(ctx); err != nil {
		return err
	}
	r.bgDone.Go(func() { roots.Run(bg) })
	return nil
}

// publishedSigners are every node's receipt signers, which root agents'
// delegations as the node keys they are.
func (r *Realm) publishedSigners(ctx context.Context) ([]delegations.Published, error) {
	signers, err := r.market.Signers(ctx)
	out := make([]delegations.Published, 0, len(signers))
	for _, s := range signers {
		out = append(out, delegations.Published{Address: common.HexToAddress(s.Address), Until: s.Until})
	}
	return out, err
}

// publicBase is the URL a DPoP proof's htu names: the realm's first
// origin (its public URL behind a proxy), never a client's Host header.
func (r *Realm) publicBase() *url.URL {
	if o := r.origins(); len(o) > 0 {
		if u, err := url.Parse(o[0]); err == nil {
			return u
		}
	}
	return &url.URL{Scheme: "http", Host: "localhost"}
}
