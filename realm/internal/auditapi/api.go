package auditapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Deps is what the audit API reads, bound once the audit log is open.
type Deps struct {
	Log  *slog.Logger
	Node string // this node's name
	// AnchorsDir holds this node's last checkpoint and the last one it
	// witnessed of every other node.
	AnchorsDir string
	// AuditRoles may read every event; anyone else reads their own.
	AuditRoles []string
	Store      *store.Store
	Audit      *audit.Log
	Witness    *audit.Witness
	View       *audit.View
	// AuditDeny records a refused read of the log (not waited for, like
	// every refusal's record).
	AuditDeny func(req *http.Request, actor, action, resource string, cause error)
	// DelegatedTo tells whether owner has delegated to agent: an owner
	// reads the decisions of its own agents (they act on its authority),
	// and no one else's. Nil: nobody reads an agent's but an audit role.
	DelegatedTo func(ctx context.Context, owner, agent string) (bool, error)
}

// API serves the audit log: its pages, its verification, its signed
// checkpoints and the proofs that hold a node to them.
type API struct {
	edge *edge.Edge
	// d is bound once by the composition root during start-up, before
	// the realm reports ready; handlers read it only behind the edge's
	// ready check, which orders the write before every read.
	d Deps

	// verifyRate limits GET /v1/audit/verify per client address: the
	// route is public and each call walks every node's whole chain.
	verifyRate *edge.RateLimiter

	// provers caches other nodes' audit trees for the proof routes.
	provers struct {
		sync.Mutex
		byNode map[string]cachedProver
	}
}

// VerifyRate and VerifyBurst are the token bucket GET /v1/audit/verify
// takes from per client address: a verifier polling every few seconds
// fits, a loop that would keep the node walking chains does not.
const (
	VerifyRate  = 0.2 // a call every 5 s, once the burst is spent
	VerifyBurst = 10
)

// New returns the audit API, to be bound (Bind) before the realm is ready.
func New(e *edge.Edge) *API {
	return &API{edge: e, verifyRate: edge.NewRateLimiter(VerifyRate, VerifyBurst, time.Now)}
}

// Bind gives the API the open audit log and what it reads beside it.
func (a *API) Bind(d Deps) { a.d = d }

// Routes registers the audit routes.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/audit", a.edge.Authed(a.handleAudit))
	mux.HandleFunc("GET /v1/audit/verify", a.edge.WhenReady(a.handleAuditVerify))
	mux.HandleFunc("GET /v1/audit/checkpoints", a.edge.WhenReady(a.handleAuditCheckpoints))
	mux.HandleFunc("GET /v1/audit/proof/inclusion", a.edge.WhenReady(a.handleAuditInclusion))
	mux.HandleFunc("GET /v1/audit/proof/consistency", a.edge.WhenReady(a.handleAuditConsistency))
}

// handleAudit lists decisions from every node, newest first, a page at a
// time: filters action, decision (or outcome), actor, resource, node,
// since, until; paging limit and before (the previous page's next). Every
// parameter is checked, and a bad one is a 400 naming it.
//
// The log names who did what and the trust signals behind each decision,
// so it is read with a session: an avatar with one of Config.AuditRoles
// reads every event, any other only the events it is the actor of and
// those of the agents it delegated to (scope "agent"). That
// limit is the server's: a query without actor is narrowed to the caller,
// and one that names another actor is refused (and the refusal audited),
// never quietly answered with an empty page.
func (a *API) handleAudit(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	query, err := audit.ParseQuery(req.URL.Query())
	if err != nil {
		a.edge.WriteError(w, req, edge.BadRequest(err.Error()))
		return
	}
	scope := "all"
	if !a.readsWholeAudit(p) {
		ownAgent, err := a.ownAgent(req.Context(), p.Avatar.ID, query.Actor)
		if err != nil {
			a.edge.WriteError(w, req, err)
			return
		}
		switch {
		case ownAgent:
			scope = "agent"
		case query.Actor != "" && query.Actor != p.Avatar.ID:
			need := "no role may (the realm's audit roles are empty)"
			if len(a.d.AuditRoles) > 0 {
				need = "that needs one of the roles " + strings.Join(a.d.AuditRoles, ", ")
			}
			err := &edge.Error{Status: http.StatusForbidden, Detail: "this avatar may read only its own decisions (actor " +
				strconv.Quote(p.Avatar.ID) + ") in the audit log; to read another actor's, " + need}
			a.d.AuditDeny(req, p.Avatar.ID, "ReadAudit", "AuditLog::"+strconv.Quote(query.Actor), err)
			a.edge.WriteError(w, req, err)
			return
		default:
			query.Actor, scope = p.Avatar.ID, "own"
		}
	}
	page := a.d.View.Page(query)
	body := map[string]any{"events": page.Events, "truncated": page.Truncated, "scope": scope}
	if !page.Next.IsZero() {
		body["next"] = page.Next.String()
	}
	edge.WriteJSON(w, http.StatusOK, body)
}

// readsWholeAudit reports whether the avatar holds a role that reads every
// event of the audit log. Roles are read anew with each request (see
// authenticate), so a role taken away stops the next read.
func (a *API) readsWholeAudit(p edge.Principal) bool {
	return slices.ContainsFunc(p.Avatar.Roles, func(role string) bool { return slices.Contains(a.d.AuditRoles, role) })
}

// handleAuditVerify verifies every node's chain (or, with ?node=, one) as
// a transparency log: the hash links, and the chain against the
// checkpoints kept in this node's data directory, in AUDITCP, and what
// this node's witness refused. It answers the public part: counts, heads,
// roots, newest checkpoints and every finding; ok only without findings.
func (a *API) handleAuditVerify(w http.ResponseWriter, req *http.Request) {
	if ok, wait := a.verifyRate.Take(edge.RateKey(a.edge.ClientAddr(req))); !ok {
		a.edge.WriteError(w, req, edge.TooMany(wait, "too many audit verifications from your address; wait and try again"))
		return
	}
	only := req.URL.Query().Get("node")
	if only != "" && !audit.ValidNode(only) {
		a.edge.WriteError(w, req, edge.BadRequest(`query parameter "node" must name a node ([A-Za-z0-9_-]{1,64})`))
		return
	}
	anchors, anchorErr := audit.LoadAnchors(a.d.AnchorsDir)
	if anchorErr != nil {
		// Anchors that do not verify are themselves a finding; the
		// chains are still verified against the rest.
		a.d.Log.Error("audit anchors in the data directory do not verify", "err", anchorErr)
	}
	res, err := audit.VerifyAll(req.Context(), a.d.Store, anchors)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	if anchorErr != nil {
		res.Findings = append(res.Findings, audit.Finding{Node: a.d.Node, Kind: audit.KindBadAnchor, Detail: anchorErr.Error()})
	}
	res.Findings = append(res.Findings, a.d.Audit.StartFindings()...)
	res.Findings = append(res.Findings, a.d.Witness.Refusals()...)
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
func (a *API) handleAuditCheckpoints(w http.ResponseWriter, req *http.Request) {
	node := req.URL.Query().Get("node")
	if node != "" && !audit.ValidNode(node) {
		a.edge.WriteError(w, req, edge.BadRequest(`query parameter "node" must name a node ([A-Za-z0-9_-]{1,64})`))
		return
	}
	pins := map[string]string{}
	for _, n := range a.knownNodes() {
		if c, ok := a.d.Witness.Accepted(n); ok {
			pins[n] = c.Key
		}
	}
	if own := a.d.Audit.LastCheckpoint(); own.Size > 0 {
		pins[a.d.Node] = own.Key
	}
	cps, err := audit.LatestCheckpoints(req.Context(), a.d.Store, node, pins)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	if node != "" && len(cps) == 0 {
		a.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "node " + strconv.Quote(node) + " has published no checkpoint"})
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
func (a *API) knownNodes() []string {
	cps, err := audit.LoadAnchors(a.d.AnchorsDir)
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
func (a *API) prover(ctx context.Context, node string, size uint64) (*audit.Prover, error) {
	if node == a.d.Node {
		return a.d.Audit.Prover(), nil
	}
	a.provers.Lock()
	defer a.provers.Unlock()
	if a.provers.byNode == nil {
		a.provers.byNode = map[string]cachedProver{}
	}
	c, ok := a.provers.byNode[node]
	if ok && (c.p.Size() >= size || time.Since(c.built) < proverRefresh) {
		return c.p, nil
	}
	p, err := audit.Prove(ctx, a.d.Store, node)
	if err != nil {
		return nil, err
	}
	a.provers.byNode[node] = cachedProver{p: p, built: time.Now()}
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
func (a *API) handleAuditInclusion(w http.ResponseWriter, req *http.Request) {
	node, index, size, err := proofParams(req, "index", "size")
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	p, err := a.prover(req.Context(), node, size)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	proof, err := p.Inclusion(index, size)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	answer := map[string]any{"node": node, "index": index, "size": size, "proof": hashes(proof)}
	// The leaf itself, the event as stored, while the node's view of
	// recent events holds it (GET /v1/audit serves events decoded).
	if ev, ok := a.d.View.Stored(node, index); ok {
		answer["event"] = string(ev)
	}
	edge.WriteJSON(w, http.StatusOK, answer)
}

// handleAuditConsistency serves the RFC 6962 consistency proof between
// node's trees of from and to events.
func (a *API) handleAuditConsistency(w http.ResponseWriter, req *http.Request) {
	node, from, to, err := proofParams(req, "from", "to")
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	p, err := a.prover(req.Context(), node, to)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	proof, err := p.Consistency(from, to)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"node": node, "from": from, "to": to, "proof": hashes(proof)})
}

// hashes are proof hashes as base64 strings (tlog.Hash's JSON form).
func hashes(p []tlog.Hash) []tlog.Hash {
	if p == nil {
		return []tlog.Hash{}
	}
	return p
}

// ownAgent tells whether actor names an agent that owner delegated to.
func (a *API) ownAgent(ctx context.Context, owner, actor string) (bool, error) {
	if a.d.DelegatedTo == nil || !strings.HasPrefix(actor, "ag_") {
		return false, nil
	}
	ok, err := a.d.DelegatedTo(ctx, owner, actor)
	if err != nil {
		return false, fmt.Errorf("auditapi: whose agent is %s: %w", actor, err)
	}
	return ok, nil
}
