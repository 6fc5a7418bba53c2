package delegations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/agents/cascade"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/clustercast"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Bucket holds the delegations issued, one record per root, keyed by
// owner and delegation id; sealed with the cluster's record key.
const Bucket = "agent-delegations"

// MaxPerOwner bounds an owner's delegations (revoked and expired ones
// included, until their records expire), so one avatar cannot fill the
// bucket.
const MaxPerOwner = 64

// DraftTTL is how long a prepared delegation may wait for its step-up:
// the grant's iat must be at most this old when it is issued.
const DraftTTL = 10 * time.Minute

// recordTTL keeps a record as long as the delegation could be valid, and
// a day more so the owner sees it ended.
const recordTTL = agents.MaxLifetime + 24*time.Hour

// Audited action names.
const (
	ActionIssue     = "IssueDelegation"
	ActionRevoke    = "RevokeDelegation"
	ActionReinstate = "ReinstateAgent"
)

// StepUps spends the owner's passkey step-up bound to a digest
// (identity.StepUps).
type StepUps interface {
	Consume(ctx context.Context, sessionID string, digest []byte) error
}

// Cascade is how this node tells the others of its agent revocations
// (agents/cascade): over core NATS under the cluster's message tag, to
// the other nodes live now.
type Cascade struct {
	Conn   *nats.Conn
	Prefix string
	Node   string
	Auth   clustercast.Authenticator
	Peers  func() []string
	// OnRefused is told of each notice or acknowledgement dropped because
	// it does not verify.
	OnRefused func(kind string, err error)
}

// AgentTrust is an agent's trust now (agents.Guard).
type AgentTrust interface {
	Assess(agent string) agents.Assessment
}

// Reinstater lifts an agent's suspension (agents.Guard).
type Reinstater interface {
	Reinstate(ctx context.Context, agent string) error
}

// Deps is what the API needs once the realm has started. See API.Bind.
type Deps struct {
	Log *slog.Logger
	// Signer is the node's active ring key: it signs roots.
	Signer  agents.RootSigner
	StepUps StepUps
	// Revoker is the node's revocation mirror (agents.Revocations): a
	// revocation is denied there, told to the other nodes through
	// Cascade, and stored.
	Revoker     cascade.Revocations
	Cascade     Cascade
	Reinstater  Reinstater
	AgentTrust  AgentTrust
	Records     *store.Bucket // opened as Bucket, sealed, with recordTTL
	AuditNoWait func(ctx context.Context, ev audit.Event)
	// Background ends with the node's background loops, which Go starts
	// and the node waits for: the revocations' store attempts run there.
	Background context.Context
	Go         func(func())
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// API serves the delegation routes.
type API struct {
	edge *edge.Edge
	*Deps
	cascade *cascade.Broadcaster
}

// New makes the API; its routes may be registered before Bind.
func New(e *edge.Edge) *API { return &API{edge: e} }

// BucketConfig is how the realm opens the records bucket.
func BucketConfig() store.BucketConfig {
	return store.BucketConfig{Name: Bucket, Sealed: true, TTL: recordTTL}
}

// Bind gives the API what it needs; the composition root calls it once,
// during start-up, before the realm reports ready.
func (a *API) Bind(deps Deps) error {
	if deps.Log == nil || deps.Signer == nil || deps.StepUps == nil || deps.Revoker == nil || deps.Reinstater == nil || deps.AgentTrust == nil || deps.Records == nil || deps.AuditNoWait == nil || deps.Background == nil || deps.Go == nil {
		return errors.New("delegations: every dependency is required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	c := deps.Cascade
	b, err := cascade.New(cascade.Config{Conn: c.Conn, Prefix: c.Prefix, Node: c.Node, Auth: c.Auth, Peers: c.Peers,
		Revocations: deps.Revoker, OnRefused: c.OnRefused, Logger: deps.Log})
	if err != nil {
		return fmt.Errorf("delegations: %w", err)
	}
	// Its background store attempts end with the node.
	deps.Go(func() {
		<-deps.Background.Done()
		b.Close()
	})
	a.cascade = b
	a.Deps = &deps
	return nil
}

// Routes registers the routes on mux: all of them a person's but
// GET /v1/agents/me, an agent's.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/agents/delegations/digest", a.edge.Authed(a.handleDigest))
	mux.HandleFunc("POST /v1/agents/delegations", a.edge.Authed(a.handleIssue))
	mux.HandleFunc("GET /v1/agents/delegations", a.edge.Authed(a.handleList))
	mux.HandleFunc("DELETE /v1/agents/delegations/{id}", a.edge.Authed(a.handleRevoke))
	mux.HandleFunc("POST /v1/agents/{id}/reinstate", a.edge.Authed(a.handleReinstate))
	mux.HandleFunc("GET /v1/agents/me", a.edge.AgentAuthed(a.handleAgentMe))
}

// DigestRequest is what the owner grants.
type DigestRequest struct {
	// AgentKey is the agent's Ed25519 public key, base64url.
	AgentKey  string            `json:"agent_key"`
	Actions   []string          `json:"actions"`
	Resources []agents.Resource `json:"resources"`
	Limits    agents.Limits     `json:"limits"`
	// ExpiresIn is the delegation's lifetime in seconds, at most 24 h.
	ExpiresIn int64 `json:"expires_in"`
}

// IssueRequest is the grant the digest answer returned, unchanged.
type IssueRequest struct {
	Grant agents.Grant `json:"grant"`
}

// handleDigest prepares the root the owner asks for and answers its
// digest, which the owner's step-up must be bound to. Nothing is stored.
func (a *API) handleDigest(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	var body DigestRequest
	if err := edge.DecodeJSON(w, req, &body); err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	if body.ExpiresIn <= 0 || body.ExpiresIn > int64(agents.MaxLifetime/time.Second) {
		a.edge.WriteError(w, req, edge.BadRequest(fmt.Sprintf("expires_in must be 1 to %d seconds", int64(agents.MaxLifetime/time.Second))))
		return
	}
	now := a.Now().UTC().Truncate(time.Second)
	d, err := agents.PrepareRoot(agents.Grant{
		Owner: p.Avatar.ID, Agent: body.AgentKey, Actions: body.Actions, Resources: body.Resources,
		Limits: body.Limits, IssuedAt: now, ExpiresAt: now.Add(time.Duration(body.ExpiresIn) * time.Second),
	}, a.Signer.Address())
	if err != nil {
		a.edge.WriteError(w, req, grantError(err))
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"grant": d.Grant, "agent": agentIDOf(d.Grant), "action_digest": edge.DigestHex(d.Digest[:])})
}

// handleIssue signs the root the owner confirmed with a step-up bound to
// its digest, records it and answers the token.
func (a *API) handleIssue(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	var body IssueRequest
	if err := edge.DecodeJSON(w, req, &body); err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	g := body.Grant
	resource := `Delegation::"` + g.ID + `"`
	refuse := func(err error) {
		a.auditDeny(req, p.Avatar.ID, ActionIssue, resource, err)
		a.edge.WriteError(w, req, err)
	}
	now := a.Now()
	switch {
	case g.ID == "":
		refuse(edge.BadRequest("grant.id is missing: send the grant the digest answer returned"))
		return
	case g.Owner != p.Avatar.ID:
		refuse(&edge.Error{Status: http.StatusForbidden, Detail: "the grant is for another owner: an avatar delegates only its own authority"})
		return
	case g.Issuer != a.Signer.Address().Hex():
		refuse(&edge.Error{Status: http.StatusConflict, Detail: "the grant was prepared by another realm node's key: ask this node for the digest and confirm it again"})
		return
	case now.Sub(g.IssuedAt) > DraftTTL || g.IssuedAt.After(now.Add(time.Minute)):
		refuse(&edge.Error{Status: http.StatusConflict, Detail: fmt.Sprintf("the grant was prepared more than %s ago: ask for a new digest", DraftTTL)})
		return
	}
	d, err := agents.PrepareRoot(g, a.Signer.Address())
	if err != nil {
		refuse(grantError(err))
		return
	}
	if n, err := a.count(req.Context(), p.Avatar.ID); err != nil {
		a.edge.WriteError(w, req, err)
		return
	} else if n >= MaxPerOwner {
		refuse(&edge.Error{Status: http.StatusTooManyRequests, Type: edge.TypeRateLimited, Detail: fmt.Sprintf("an avatar holds at most %d delegations: revoke some, or wait for them to expire", MaxPerOwner)})
		return
	}
	// Last of the checks: a refusal above must not spend the step-up.
	if err := a.StepUps.Consume(req.Context(), p.Session.ID, d.Digest[:]); err != nil {
		refuse(err)
		return
	}
	c, err := d.Sign(a.Signer)
	if err != nil {
		a.edge.WriteError(w, req, fmt.Errorf("delegations: sign: %w", err))
		return
	}
	rec := recordOf(d.Grant)
	data, err := json.Marshal(rec)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	if _, err := a.Records.Create(req.Context(), recordKey(p.Avatar.ID, g.ID), data); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = &edge.Error{Status: http.StatusConflict, Detail: "this delegation was issued already", Err: err}
		}
		a.edge.WriteError(w, req, err)
		return
	}
	a.AuditNoWait(req.Context(), audit.Event{
		Actor: p.Avatar.ID, Action: ActionIssue, Resource: resource, Outcome: audit.Allow,
		Reasons: []string{"the owner's own authority", "confirmed with a passkey step-up bound to the delegation's digest"},
		Signals: edge.WithRequestID(req, map[string]any{
			"agent": rec.AgentID, "actions": rec.Actions, "resources": resourceStrings(rec.Resources), "expires": rec.Expires.Format(time.RFC3339),
			"action_digest": edge.DigestHex(d.Digest[:]), "issuer": g.Issuer,
		}),
	})
	edge.WriteJSON(w, http.StatusCreated, map[string]any{"token": c.Token(), "delegation": rec.view(now)})
}

// handleList answers the owner's delegations, newest first.
func (a *API) handleList(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	recs, err := a.list(req.Context(), p.Avatar.ID)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	now := a.Now()
	out := make([]View, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.rec.view(now))
	}
	slices.SortFunc(out, func(x, y View) int { return y.Issued.Compare(x.Issued) })
	edge.WriteJSON(w, http.StatusOK, map[string]any{"delegations": out})
}

// handleRevoke revokes one of the owner's delegations on every node, and
// with it everything derived from it. Revoking needs no step-up: it only
// ever takes authority away.
func (a *API) handleRevoke(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	id := req.PathValue("id")
	resource := `Delegation::"` + id + `"`
	entry, err := a.Records.Get(req.Context(), recordKey(p.Avatar.ID, id))
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		a.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "you have no delegation " + id})
		return
	}
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	var rec record
	if err := json.Unmarshal(entry.Value, &rec); err != nil {
		a.edge.WriteError(w, req, fmt.Errorf("delegations: record %s: %w", id, err))
		return
	}
	out, err := a.cascade.Revoke(req.Context(), id, p.Avatar.ID, "revoked by its owner")
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	if rec.Revoked == nil {
		at := a.Now().UTC()
		rec.Revoked = &at
		if data, err := json.Marshal(rec); err == nil {
			// The revocation above is what every node enforces; the
			// record only shows it. A lost race leaves the record as the
			// other writer left it, which also says revoked.
			if _, err := a.Records.Update(req.Context(), entry.Key, data, entry.Revision); err != nil && !errors.Is(err, store.ErrConflict) {
				a.Log.Warn("delegation revoked; its record not marked", "delegation", id, "err", err)
			}
		}
	}
	a.AuditNoWait(req.Context(), audit.Event{
		Actor: p.Avatar.ID, Action: ActionRevoke, Resource: resource, Outcome: audit.Allow,
		Reasons: []string{"the owner revoked it: it and every delegation derived from it are refused on every node"},
		Signals: edge.WithRequestID(req, map[string]any{"agent": rec.AgentID, "nodes_told": out.NodesTold, "nodes_live": out.NodesLive, "stored": out.Stored}),
	})
	edge.WriteJSON(w, http.StatusOK, out)
}

// ReinstateDigest is what the owner's step-up is bound to before an
// agent's suspension is lifted.
func ReinstateDigest(agentID string) []byte {
	return edge.ActionDigest("zerorealm reinstate agent v1", []byte(agentID))
}

// handleReinstate lifts the suspension of an agent the owner delegated
// to, after a step-up bound to ReinstateDigest; its behavioural history
// is forgotten.
func (a *API) handleReinstate(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	agentID := req.PathValue("id")
	resource := `Agent::"` + agentID + `"`
	recs, err := a.list(req.Context(), p.Avatar.ID)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	if !slices.ContainsFunc(recs, func(r listed) bool { return r.rec.AgentID == agentID }) {
		a.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "you have delegated to no agent " + agentID})
		return
	}
	digest := ReinstateDigest(agentID)
	if err := a.StepUps.Consume(req.Context(), p.Session.ID, digest); err != nil {
		var he *edge.Error
		if errors.As(err, &he) {
			he.Detail += " (the step-up's action_digest is " + edge.DigestHex(digest) + ")"
		}
		a.auditDeny(req, p.Avatar.ID, ActionReinstate, resource, err)
		a.edge.WriteError(w, req, err)
		return
	}
	if err := a.Reinstater.Reinstate(req.Context(), agentID); err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	a.AuditNoWait(req.Context(), audit.Event{
		Actor: p.Avatar.ID, Action: ActionReinstate, Resource: resource, Outcome: audit.Allow,
		Reasons: []string{"the owner lifted the agent's suspension", "confirmed with a passkey step-up bound to the agent"},
		Signals: edge.WithRequestID(req, map[string]any{"action_digest": edge.DigestHex(digest)}),
	})
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) auditDeny(req *http.Request, actor, action, resource string, err error) {
	a.AuditNoWait(req.Context(), audit.Event{
		Actor: actor, Action: action, Resource: resource, Outcome: audit.Deny,
		Reasons: []string{err.Error()}, Signals: edge.WithRequestID(req, nil),
	})
}

// grantError answers a grant the agents domain refuses: 400 with its
// reason, for the owner to fix.
func grantError(err error) error {
	var d *agents.DenyError
	if errors.As(err, &d) {
		return &edge.Error{Status: http.StatusBadRequest, Detail: "the grant is refused: " + string(d.Reason) + ": " + d.Detail, Err: err}
	}
	return err
}

func resourceStrings(rs []agents.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// recordKey is the owner's delegation's key: "<owner>.<id>". Neither has
// a dot (an avatar id and dg_ with hex digits).
func recordKey(owner, id string) string { return owner + "." + id }

func ownerPrefix(owner string) string { return owner + "." }
