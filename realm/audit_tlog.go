package realm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// AuditDir is where a node keeps, outside NATS, its last audit checkpoint
// and the last checkpoint it witnessed of every other node.
const AuditDir = "audit"

// openAudit opens this node's audit chain as a transparency log (its
// checkpoint key derived from the node's key ring, its last checkpoint in
// DataDir/audit) and starts witnessing the other nodes' checkpoints.
func (r *Realm) openAudit(ctx context.Context) error {
	key, previous, err := r.auditKeys()
	if err != nil {
		return err
	}
	dir := filepath.Join(r.cfg.DataDir, AuditDir)
	r.audit, err = audit.Open(ctx, r.store, audit.Config{Node: r.cfg.Node, Logger: r.log, Key: key, PreviousKey: previous, Dir: dir})
	if err != nil {
		return fmt.Errorf("realm: audit log: %w", err)
	}
	r.witness, err = audit.StartWitness(ctx, r.store, audit.WitnessConfig{Node: r.cfg.Node, Key: key, Dir: dir, Logger: r.log})
	if err != nil {
		return fmt.Errorf("realm: audit witness: %w", err)
	}
	r.log.Info("audit log is a transparency log", "origin", key.Origin(), "key", key.VerifierKey())
	return nil
}

// handleAuditVerify verifies every node's chain (or, with ?node=, one) as
// a transparency log: the hash links, and the chain against the
// checkpoints kept in this node's data directory, in AUDITCP, and what
// this node's witness refused. It answers the public part: counts, heads,
// roots, newest checkpoints and every finding; ok only without findings.
func (r *Realm) handleAuditVerify(w http.ResponseWriter, req *http.Request) {
	only := req.URL.Query().Get("node")
	if only != "" && !audit.ValidNode(only) {
		r.edge.WriteError(w, req, edge.BadRequest(`query parameter "node" must name a node ([A-Za-z0-9_-]{1,64})`))
		return
	}
	anchors, anchorErr := audit.LoadAnchors(filepath.Join(r.cfg.DataDir, AuditDir))
	if anchorErr != nil {
		// Anchors that do not verify are themselves a finding; the
		// chains are still verified against the rest.
		r.log.Error("audit anchors in the data directory do not verify", "err", anchorErr)
	}
	res, err := audit.VerifyAll(req.Context(), r.store, anchors)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	if anchorErr != nil {
		res.Findings = append(res.Findings, audit.Finding{Node: r.cfg.Node, Kind: audit.KindBadAnchor, Detail: anchorErr.Error()})
	}
	res.Findings = append(res.Findings, r.audit.StartFindings()...)
	res.Findings = append(res.Findings, r.witness.Refusals()...)
	if only != "" {
		res.Chains = slices.DeleteFunc(res.Chains, func(c audit.ChainStatus) bool { return c.Node != only })
		res.Findings = slices.DeleteFunc(res.Findings, func(f audit.Finding) bool { return f.Node != only })
	}
	res.OK = len(res.Findings) == 0
	edge.WriteJSON(w, http.StatusOK, res)
}

// handleAuditCheckpoints serves the newest signed checkpoint of every
// node (or of ?node=), each with the cosignatures of its witnesses: as
// JSON, or, for one node with Accept: text/plain, the C2SP signed note
// itself.
func (r *Realm) handleAuditCheckpoints(w http.ResponseWriter, req *http.Request) {
	node := req.URL.Query().Get("node")
	if node != "" && !audit.ValidNode(node) {
		r.edge.WriteError(w, req, edge.BadRequest(`query parameter "node" must name a node ([A-Za-z0-9_-]{1,64})`))
		return
	}
	pins := map[string]string{}
	for _, n := range r.knownNodes() {
		if c, ok := r.witness.Accepted(n); ok {
			pins[n] = c.Key
		}
	}
	if own := r.audit.LastCheckpoint(); own.Size > 0 {
		pins[r.cfg.Node] = own.Key
	}
	cps, err := audit.LatestCheckpoints(req.Context(), r.store, node, pins)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	if node != "" && len(cps) == 0 {
		r.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "node " + strconv.Quote(node) + " has published no checkpoint"})
		return
	}
	if node != "" && strings.HasPrefix(req.Header.Get("Accept"), "text/plain") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(cps[0].Checkpoint))
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"checkpoints": cps})
}

// knownNodes are the nodes this node's witness has accepted a checkpoint of.
func (r *Realm) knownNodes() []string {
	cps, err := audit.LoadAnchors(filepath.Join(r.cfg.DataDir, AuditDir))
	if err != nil {
		return nil
	}
	nodes := make([]string, 0, len(cps))
	for _, a := range cps {
		nodes = append(nodes, a.Node)
	}
	return nodes
}

// proofParams reads the node and the two numbers a proof needs.
func proofParams(req *http.Request, a, b string) (node string, x, y uint64, err error) {
	q := req.URL.Query()
	node = q.Get("node")
	if !audit.ValidNode(node) {
		return "", 0, 0, edge.BadRequest(`query parameter "node" is required and must name a node ([A-Za-z0-9_-]{1,64})`)
	}
	parse := func(name string) (uint64, error) {
		v, err := strconv.ParseUint(q.Get(name), 10, 64)
		if err != nil || v == 0 {
			return 0, edge.BadRequest("query parameter " + strconv.Quote(name) + " is required and must be a positive integer")
		}
		return v, nil
	}
	if x, err = parse(a); err != nil {
		return "", 0, 0, err
	}
	if y, err = parse(b); err != nil {
		return "", 0, 0, err
	}
	return node, x, y, nil
}

// prover is the prover of node's chain: this node's from its own tree,
// any other's from the chain in the store. Building one reads the whole
// chain, so the public proof routes share one per node, built again only
// when a proof needs a larger tree and at most every proverRefresh.
func (r *Realm) prover(ctx context.Context, node string, size uint64) (*audit.Prover, error) {
	if node == r.cfg.Node {
		return r.audit.Prover(), nil
	}
	r.provers.Lock()
	defer r.provers.Unlock()
	if r.provers.byNode == nil {
		r.provers.byNode = map[string]cachedProver{}
	}
	c, ok := r.provers.byNode[node]
	if ok && (c.p.Size() >= size || time.Since(c.built) < proverRefresh) {
		return c.p, nil
	}
	p, err := audit.Prove(ctx, r.store, node)
	if err != nil {
		return nil, err
	}
	r.provers.byNode[node] = cachedProver{p: p, built: time.Now()}
	return p, nil
}

// proverRefresh bounds how often a proof request rebuilds another node's
// tree from the store.
const proverRefresh = 2 * time.Second

type cachedProver struct {
	p     *audit.Prover
	built time.Time
}

// handleAuditInclusion serves the RFC 6962 inclusion proof of the event
// at index (from 1, as in the event's index) in node's tree of size
// events, with the event's stored bytes (the leaf) when the node's view
// still holds it.
func (r *Realm) handleAuditInclusion(w http.ResponseWriter, req *http.Request) {
	node, index, size, err := proofParams(req, "index", "size")
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	p, err := r.prover(req.Context(), node, size)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	proof, err := p.Inclusion(index, size)
	if err != nil {
		r.edge.WriteError(w, req, proofError(err))
		return
	}
	answer := map[string]any{"node": node, "index": index, "size": size, "proof": hashes(proof)}
	// The leaf itself, the event as stored, while the node's view of
	// recent events holds it (GET /v1/audit serves events decoded).
	if ev, ok := r.view.Stored(node, index); ok {
		answer["event"] = string(ev)
	}
	edge.WriteJSON(w, http.StatusOK, answer)
}

// handleAuditConsistency serves the RFC 6962 consistency proof between
// node's trees of from and to events.
func (r *Realm) handleAuditConsistency(w http.ResponseWriter, req *http.Request) {
	node, from, to, err := proofParams(req, "from", "to")
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	p, err := r.prover(req.Context(), node, to)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	proof, err := p.Consistency(from, to)
	if err != nil {
		r.edge.WriteError(w, req, proofError(err))
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"node": node, "from": from, "to": to, "proof": hashes(proof)})
}

func proofError(err error) error {
	if errors.Is(err, audit.ErrNoProof) {
		return &edge.Error{Status: http.StatusNotFound, Detail: "no such proof: " + strings.TrimPrefix(err.Error(), "audit: no such proof: "), Err: err}
	}
	return err
}

// hashes are proof hashes as base64 strings (tlog.Hash's JSON form).
func hashes(p []tlog.Hash) []tlog.Hash {
	if p == nil {
		return []tlog.Hash{}
	}
	return p
}
