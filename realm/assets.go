package realm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
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

func (c *AssetsConfig) problems() []string {
	var p []string
	if c.VerifyingContract != "" {
		if _, err := assets.ParseAddress(c.VerifyingContract); err != nil {
			p = append(p, fmt.Sprintf("assets verifying contract: %v", err))
		}
	}
	if c.KeyScryptN != 0 && (c.KeyScryptN < 2 || c.KeyScryptN&(c.KeyScryptN-1) != 0) {
		p = append(p, fmt.Sprintf("assets key scrypt N %d: want a power of two", c.KeyScryptN))
	}
	if c.CheckpointEvery < 0 || c.CheckpointInterval < 0 {
		p = append(p, "assets checkpoint settings must not be negative")
	}
	return p
}

// assetsHub is the realm's side of the ledger: which scene each
// collection belongs to, and the idempotency keys of transfer requests.
type assetsHub struct {
	ledger      *assets.Ledger
	scheme      *assets.Scheme
	idempotency *store.Bucket
	scenes      map[string]*scenes.Scene // collection -> scene
	highValue   uint64
	adminRole   string
}

func (h *assetsHub) close() { h.ledger.Close() }

// idempotencyTTL is how long an Idempotency-Key is remembered.
const assetIdempotencyTTL = 24 * time.Hour

func (r *Realm) startAssets(ctx context.Context) (*assetsHub, error) {
	cfg := r.cfg.Assets
	signer, err := r.nodeKey()
	if err != nil {
		return nil, err
	}
	h := &assetsHub{scenes: map[string]*scenes.Scene{}, highValue: cfg.HighValue, adminRole: cfg.AdminRole}
	if h.highValue == 0 {
		h.highValue = 10000
	}
	if h.adminRole == "" {
		h.adminRole = "admin"
	}
	var colls []assets.Collection
	for _, sc := range r.catalog.Scenes() {
		for _, c := range sc.Collections {
			if other, dup := h.scenes[c.ID]; dup {
				return nil, fmt.Errorf("realm: collection %q is declared by scenes %s and %s: collection ids are realm-wide", c.ID, other.ID, sc.ID)
			}
			h.scenes[c.ID] = sc
			ac, err := ledgerCollection(sc.ID, c)
			if err != nil {
				return nil, fmt.Errorf("realm: scene %s: %w", sc.ID, err)
			}
			colls = append(colls, ac)
		}
	}
	var contract common.Address
	if cfg.VerifyingContract != "" {
		contract, _ = assets.ParseAddress(cfg.VerifyingContract)
	}
	h.ledger, err = assets.New(ctx, r.store, assets.Config{
		Node:               r.cfg.Node,
		Collections:        colls,
		Domain:             assets.Domain{ChainID: cfg.ChainID, VerifyingContract: contract},
		Signer:             signer,
		Passphrase:         r.ringPass,
		CheckpointEvery:    cfg.CheckpointEvery,
		CheckpointInterval: cfg.CheckpointInterval,
		Now:                cfg.Now,
		Logger:             r.log,
		HeadFile:           filepath.Join(r.cfg.DataDir, ledgerHeadFile),
	})
	if errors.Is(err, assets.ErrRolledBack) {
		r.reportTamper(store.TamperEvent{Stream: "LEDGER", Key: "ledger.receipts." + r.cfg.Node, Reason: reasonLedgerRolledBack})
	}
	if err != nil {
		return nil, fmt.Errorf("realm: asset ledger: %w", err)
	}
	h.scheme = h.ledger.Scheme()
	// The leader confirms a replica's "not found": a key whose Create just
	// conflicted exists, and a replica that restarted a moment ago may not
	// have it yet (found by the chaos suite: a retried transfer answered
	// 404 after a lost quorum).
	h.idempotency, err = r.store.Bucket(ctx, store.BucketConfig{Name: "idempotency", TTL: assetIdempotencyTTL, Sealed: true, LeaderConfirmsAbsence: true})
	if err != nil {
		h.ledger.Close()
		return nil, fmt.Errorf("realm: idempotency keys: %w", err)
	}
	r.log.Info("asset ledger ready", "signer", h.ledger.Signer().Hex(), "treasury", h.ledger.Treasury().Hex(), "domain", h.scheme.Domain().String())
	return h, nil
}

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

func (r *Realm) assetRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/openapi.json", r.docs.ServeOpenAPI)
	mux.HandleFunc("GET /v1/asyncapi.json", r.docs.ServeAsyncAPI)
	mux.HandleFunc("GET /v1/assets/domain", r.edge.WhenReady(r.handleAssetDomain))
	mux.HandleFunc("GET /v1/assets/signers", r.edge.WhenReady(r.handleSigners))
	mux.HandleFunc("GET /v1/assets/collections", r.edge.WhenReady(r.handleCollections))
	mux.HandleFunc("GET /v1/assets/collections/{collection}", r.edge.WhenReady(r.handleCollection))
	mux.HandleFunc("GET /v1/assets/items/{collection}/{item}", r.edge.WhenReady(r.handleAsset))
	mux.HandleFunc("GET /v1/assets/owners/{address}", r.edge.WhenReady(r.handleOwner))
	mux.HandleFunc("GET /v1/assets/wallet", r.edge.Authed(r.handleWallet))
	mux.HandleFunc("POST /v1/assets/wallet/link/payload", r.edge.Authed(r.handleLinkPayload))
	mux.HandleFunc("POST /v1/assets/wallet/link", r.edge.Authed(r.handleLink))
	mux.HandleFunc("POST /v1/assets/wallet/custodial", r.edge.Authed(r.handleCustodial))
	mux.HandleFunc("POST /v1/assets/intents/transfer", r.edge.Public(r.handleTransferPayload))
	mux.HandleFunc("POST /v1/assets/intents/trade", r.edge.Public(r.handleTradePayload))
	mux.HandleFunc("POST /v1/assets/intents/cancel", r.edge.Public(r.handleCancelPayload))
	mux.HandleFunc("POST /v1/assets/transfers", r.edge.Authed(r.handleTransfer))
	mux.HandleFunc("POST /v1/assets/trades", r.edge.Authed(r.handleTrade))
	mux.HandleFunc("POST /v1/assets/cancel", r.edge.Authed(r.handleCancel))
	mux.HandleFunc("POST /v1/assets/mint", r.edge.Authed(r.handleMint))
	mux.HandleFunc("GET /v1/receipts", r.edge.WhenReady(r.handleReceipts))
	mux.HandleFunc("GET /v1/receipts/{digest}", r.edge.WhenReady(r.handleReceipt))
	mux.HandleFunc("GET /v1/receipts/{digest}/proof", r.edge.WhenReady(r.handleProof))
	mux.HandleFunc("GET /v1/checkpoints", r.edge.WhenReady(r.handleCheckpoints))
}

// readIntent reads a request body for the intent decoders, which apply
// their own strict JSON rules.
func readIntent(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	if ct := req.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, &edge.Error{Status: http.StatusUnsupportedMediaType, Detail: "send the body as application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, assets.MaxIntentBytes))
	if err != nil {
		return nil, &edge.Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("body larger than %d bytes", assets.MaxIntentBytes)}
	}
	return body, nil
}

// Wire views.
type (
	typedPayload struct {
		TypedData assets.TypedData `json:"typed_data"`
		Digest    string           `json:"digest"`
	}
	assetView struct {
		Collection string      `json:"collection"`
		Item       string      `json:"item"`
		Owner      string      `json:"owner"`
		Sequence   uint64      `json:"sequence"`
		History    []eventView `json:"history,omitempty"`
	}
	eventView struct {
		Sequence uint64 `json:"sequence"`
		Event    string `json:"event"`
		From     string `json:"from,omitempty"`
		To       string `json:"to"`
		Digest   string `json:"digest,omitempty"`
		Time     string `json:"time"`
	}
	balanceView struct {
		Collection string `json:"collection"`
		Owner      string `json:"owner"`
		Balance    string `json:"balance"`
		Sequence   uint64 `json:"sequence"`
	}
)

func viewAsset(a assets.Asset) assetView {
	v := assetView{Collection: a.Collection, Item: a.Item, Owner: a.Owner.Hex(), Sequence: a.Seq}
	for _, e := range a.History {
		ev := eventView{Sequence: e.Seq, Event: e.Event, To: e.To.Hex(), Time: e.Time.Format(time.RFC3339Nano)}
		if e.From != (common.Address{}) {
			ev.From = e.From.Hex()
		}
		if e.Digest != (common.Hash{}) {
			ev.Digest = e.Digest.Hex()
		}
		v.History = append(v.History, ev)
	}
	return v
}

func viewBalance(b assets.Balance) balanceView {
	return balanceView{Collection: b.Collection, Owner: b.Owner.Hex(), Balance: strconv.FormatUint(b.Balance, 10), Sequence: b.Seq}
}

// pageParams reads ?after= and ?limit= (1..500, default 100).
func pageParams(req *http.Request) (string, int, error) {
	limit := 100
	if l := req.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return "", 0, edge.BadRequest("limit must be a whole number from 1 to 500")
		}
		limit = n
	}
	return req.URL.Query().Get("after"), limit, nil
}

func (r *Realm) handleAssetDomain(w http.ResponseWriter, _ *http.Request) {
	d := r.assets.scheme.Domain()
	edge.WriteJSON(w, http.StatusOK, map[string]any{
		"domain":   assets.DomainMessage{Name: d.Name, Version: d.Version, ChainID: assets.Uint(d.ChainID), VerifyingContract: d.VerifyingContract.Hex()},
		"signer":   r.assets.ledger.Signer().Hex(),
		"chain":    r.assets.ledger.Node(),
		"treasury": r.assets.ledger.Treasury().Hex(),
	})
}

func (r *Realm) handleCollections(w http.ResponseWriter, _ *http.Request) {
	out := []map[string]any{}
	for _, c := range r.assets.ledger.Collections() {
		out = append(out, map[string]any{"id": c.ID, "scene": c.Scene, "name": c.Name, "kind": c.Kind, "soulbound": c.Soulbound, "decimals": c.Decimals})
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"collections": out})
}

// handleCollection lists a collection's items (unique) or balances
// (fungible), a page at a time; next is the cursor for ?after=.
func (r *Realm) handleCollection(w http.ResponseWriter, req *http.Request) {
	c, ok := r.assets.ledger.Collection(req.PathValue("collection"))
	if !ok {
		r.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "no collection " + strconv.Quote(req.PathValue("collection"))})
		return
	}
	after, limit, err := pageParams(req)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	if c.Kind == assets.Unique {
		items, next := r.assets.ledger.AssetsIn(c.ID, after, limit)
		out := make([]assetView, len(items))
		for i, a := range items {
			out[i] = viewAsset(a)
		}
		edge.WriteJSON(w, http.StatusOK, map[string]any{"collection": c.ID, "kind": c.Kind, "items": out, "next": next})
		return
	}
	bals, next := r.assets.ledger.BalancesIn(c.ID, after, limit)
	out := make([]balanceView, len(bals))
	for i, b := range bals {
		out[i] = viewBalance(b)
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"collection": c.ID, "kind": c.Kind, "balances": out, "next": next})
}

func (r *Realm) handleAsset(w http.ResponseWriter, req *http.Request) {
	a, err := r.assets.ledger.Asset(req.PathValue("collection"), req.PathValue("item"))
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, viewAsset(a))
}

func (r *Realm) handleOwner(w http.ResponseWriter, req *http.Request) {
	owner, err := assets.ParseAddress(req.PathValue("address"))
	if err != nil {
		r.edge.WriteError(w, req, edge.BadRequest(err.Error()))
		return
	}
	after, limit, err := pageParams(req)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	items, next := r.assets.ledger.AssetsOf(owner, after, limit)
	iv := make([]assetView, len(items))
	for i, a := range items {
		iv[i] = viewAsset(a)
	}
	bals := r.assets.ledger.BalancesOf(owner)
	bv := make([]balanceView, len(bals))
	for i, b := range bals {
		bv[i] = viewBalance(b)
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"owner": owner.Hex(), "items": iv, "balances": bv, "next": next,
		"next_nonce": strconv.FormatUint(r.assets.ledger.NextNonce(owner), 10)})
}

func (r *Realm) handleWallet(w http.ResponseWriter, _ *http.Request, p edge.Principal) {
	wallets, custodial := r.assets.ledger.Addresses(p.Avatar.ID)
	ws := []map[string]string{}
	for _, a := range wallets {
		ws = append(ws, map[string]string{"address": a.Hex(), "next_nonce": strconv.FormatUint(r.assets.ledger.NextNonce(a), 10)})
	}
	out := map[string]any{"avatar": p.Avatar.ID, "wallets": ws}
	if custodial != (common.Address{}) {
		out["custodial"] = map[string]string{"address": custodial.Hex(), "next_nonce": strconv.FormatUint(r.assets.ledger.NextNonce(custodial), 10)}
	}
	edge.WriteJSON(w, http.StatusOK, out)
}

type linkRequest struct {
	Wallet    string      `json:"wallet"`
	Deadline  assets.Uint `json:"deadline,omitempty"`
	Signature string      `json:"signature,omitempty"`
}

// linkDeadline is how long a LinkWallet payload may wait for its signature.
const linkDeadline = 10 * time.Minute

func (r *Realm) handleLinkPayload(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	var in linkRequest
	if err := edge.DecodeJSON(w, req, &in); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	wallet, err := assets.ParseAddress(in.Wallet)
	if err != nil {
		r.edge.WriteError(w, req, edge.BadRequest("wallet: "+err.Error()))
		return
	}
	link := assets.LinkWallet{Avatar: p.Avatar.ID, Wallet: wallet, Deadline: uint64(time.Now().Add(linkDeadline).Unix())}
	edge.WriteJSON(w, http.StatusOK, typedPayload{TypedData: r.assets.scheme.LinkTypedData(&link), Digest: r.assets.scheme.LinkDigest(&link).Hex()})
}

func (r *Realm) handleLink(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	var in linkRequest
	if err := edge.DecodeJSON(w, req, &in); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	wallet, err := assets.ParseAddress(in.Wallet)
	if err != nil {
		r.edge.WriteError(w, req, edge.BadRequest("wallet: "+err.Error()))
		return
	}
	sig, err := assets.ParseSignature(in.Signature)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	link := assets.LinkWallet{Avatar: p.Avatar.ID, Wallet: wallet, Deadline: uint64(in.Deadline)}
	if err := r.assets.ledger.LinkWallet(req.Context(), link, sig); err != nil {
		r.auditDeny(req, p.Avatar.ID, "LinkWallet", "Wallet::"+strconv.Quote(wallet.Hex()), err)
		r.edge.WriteError(w, req, err)
		return
	}
	r.auditAllow(req, p.Avatar.ID, "LinkWallet", "Wallet::"+strconv.Quote(wallet.Hex()), "the wallet signed the LinkWallet message", nil)
	r.handleWallet(w, req, p)
}

func (r *Realm) handleCustodial(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	if _, err := r.assets.ledger.Custodial(req.Context(), p.Avatar.ID); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	r.handleWallet(w, req, p)
}

func (r *Realm) handleTransferPayload(w http.ResponseWriter, req *http.Request) {
	body, err := readIntent(w, req)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	in, err := assets.DecodeTransferRequest(body)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	if _, ok := r.assets.ledger.Collection(in.Transfer.Collection); !ok {
		r.edge.WriteError(w, req, &assets.RejectError{Reason: assets.ReasonUnknownCollection, Detail: "no collection " + strconv.Quote(in.Transfer.Collection)})
		return
	}
	edge.WriteJSON(w, http.StatusOK, typedPayload{TypedData: r.assets.scheme.TransferTypedData(&in.Transfer), Digest: r.assets.scheme.TransferDigest(&in.Transfer).Hex()})
}

func (r *Realm) handleTradePayload(w http.ResponseWriter, req *http.Request) {
	body, err := readIntent(w, req)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	in, err := assets.DecodeTradeRequest(body)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, typedPayload{TypedData: r.assets.scheme.TradeTypedData(&in.Trade), Digest: r.assets.scheme.TradeDigest(&in.Trade).Hex()})
}

type cancelRequest struct {
	Owner      string      `json:"owner"`
	NonceFloor assets.Uint `json:"nonceFloor"`
	Deadline   assets.Uint `json:"deadline"`
	Signature  string      `json:"signature,omitempty"`
}

func (c *cancelRequest) decode() (assets.CancelIntents, error) {
	owner, err := assets.ParseAddress(c.Owner)
	if err != nil {
		return assets.CancelIntents{}, edge.BadRequest("owner: " + err.Error())
	}
	return assets.CancelIntents{Owner: owner, NonceFloor: uint64(c.NonceFloor), Deadline: uint64(c.Deadline)}, nil
}

func (r *Realm) handleCancelPayload(w http.ResponseWriter, req *http.Request) {
	var in cancelRequest
	if err := edge.DecodeJSON(w, req, &in); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	c, err := in.decode()
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, typedPayload{TypedData: r.assets.scheme.CancelTypedData(&c), Digest: r.assets.scheme.CancelDigest(&c).Hex()})
}

// handleCancel raises an owner's nonce floor, cancelling every intent
// signed with a lower nonce. The owner's signature authorizes it (a
// custodial owner's, after a step-up bound to the cancellation's digest).
func (r *Realm) handleCancel(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	var in cancelRequest
	if err := edge.DecodeJSON(w, req, &in); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	c, err := in.decode()
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	sig, err := r.ownerSignature(req, p, c.Owner, in.Signature, r.assets.scheme.CancelDigest(&c))
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	if err := r.assets.ledger.CancelIntents(req.Context(), c, sig); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"owner": c.Owner.Hex(), "next_nonce": strconv.FormatUint(r.assets.ledger.NextNonce(c.Owner), 10)})
}

// ownerSignature is the signature that authorizes digest for owner: the
// one given, or, for the caller's own custodial address, the custodial
// key's, once the caller's step-up for exactly this digest is spent. An
// owner that is neither the caller's wallet nor its custodial address is
// refused: the realm acts only for the signed-in avatar's own addresses.
func (r *Realm) ownerSignature(req *http.Request, p edge.Principal, owner common.Address, given string, digest common.Hash) (assets.Signature, error) {
	wallets, custodial := r.assets.ledger.Addresses(p.Avatar.ID)
	mine := owner == custodial && custodial != (common.Address{}) || slices.Contains(wallets, owner)
	if !mine {
		return assets.Signature{}, &assets.RejectError{Reason: assets.ReasonNotYours,
			Detail: fmt.Sprintf("%s is neither a wallet linked to this avatar nor its custodial address", owner.Hex())}
	}
	if given != "" {
		return assets.ParseSignature(given)
	}
	if owner != custodial {
		return assets.Signature{}, edge.BadRequest("signature is required: " + owner.Hex() + " is a linked wallet, which signs for itself")
	}
	if err := r.stepups.consume(req.Context(), p.Session.ID, digest[:]); err != nil {
		return assets.Signature{}, err
	}
	return r.assets.ledger.SignCustodial(p.Avatar.ID, digest)
}

// authorizeTransfer is the scene policy check of every leg: TransferAsset
// on the asset, with the amount, whether it is high value, the velocity of
// a fungible leg's holder, and the session's trust. Each leg's decision is
// stored in the audit log before the ledger acts on it: a transfer the
// audit log cannot record does not happen. The ledger calls it again when
// another transfer of the same holder landed first, so the audit log then
// holds both decisions.
func (r *Realm) authorizeTransfer(req *http.Request, p edge.Principal, legs []*assets.Transfer) func(context.Context, assets.Check) error {
	return func(ctx context.Context, chk assets.Check) error {
		a := r.trust.assess(ctx, p.Session)
		for i, c := range chk.Legs {
			sc := r.assets.scenes[c.ID]
			coll, ok := sc.Collection(c.ID)
			if !ok {
				return fmt.Errorf("collection %s missing from scene %s", c.ID, sc.ID)
			}
			t := legs[i]
			entity := coll.AssetEntity(t.AssetID)
			extra := map[string]any{
				scenes.ContextAmount:    int64(t.Amount),
				scenes.ContextHighValue: c.Kind == assets.Fungible && t.Amount >= r.assets.highValue,
			}
			if i < len(chk.Velocity) && chk.Velocity[i] != nil {
				extra[scenes.ContextVelocity] = velocityContext(chk.Velocity[i])
			}
			d, err := r.decideAndWait(ctx, sc, p, a, scenes.ActionTransferAsset, entity.UID, extra, entity)
			if err != nil {
				return &edge.Error{Status: http.StatusServiceUnavailable, Detail: "the transfer's authorization could not be stored in the audit log, so nothing moved; retry later", Err: err, NothingChanged: true}
			}
			if !d.Allow {
				return &edge.Error{Status: http.StatusForbidden, Detail: fmt.Sprintf("the scene's policy refuses this transfer of %s: %s", entity.UID, d.Reason)}
			}
		}
		return nil
	}
}

// velocityContext is a holder's velocity as the policies read it. The
// ledger caps the sums at assets.MaxAmount, which a Cedar Long holds.
func velocityContext(v *assets.Velocity) map[string]any {
	return map[string]any{
		scenes.VelocitySum1h:    int64(v.Sum1h),
		scenes.VelocitySum24h:   int64(v.Sum24h),
		scenes.VelocityCount1h:  int64(min(v.Count1h, assets.MaxAmount)),
		scenes.VelocityCount24h: int64(min(v.Count24h, assets.MaxAmount)),
	}
}

func (r *Realm) handleTransfer(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	body, err := readIntent(w, req)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	in, err := assets.DecodeTransferRequest(body)
	if err == nil {
		err = r.assets.ledger.CheckDomain(in.Domain)
	}
	if err == nil {
		if _, ok := r.assets.ledger.Collection(in.Transfer.Collection); !ok {
			err = &assets.RejectError{Reason: assets.ReasonUnknownCollection, Detail: "no collection " + strconv.Quote(in.Transfer.Collection)}
		}
	}
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	t := in.Transfer
	prepared := r.assets.scheme.Prepare(t)
	digest := prepared.Digest()
	retry, release, err := r.claimTransferKey(req, p, digest)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	if r.answerIfApplied(w, req, digest) {
		return
	}
	given := ""
	if in.Signature != nil {
		given = in.Signature.String()
	}
	sig, err := r.ownerSignature(req, p, t.From, given, digest)
	if err != nil {
		release()
		r.edge.WriteError(w, req, err)
		return
	}
	rc, err := r.assets.ledger.TransferPrepared(req.Context(), prepared, sig, r.authorizeTransfer(req, p, []*assets.Transfer{&t}))
	if err != nil {
		release()
		r.settleRefusal(w, req, digest, retry, err)
		return
	}
	r.writeTransferAnswer(w, http.StatusCreated, digest, &rc)
}

// answerBuffers recycles the buffers of transfer answers.
var answerBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// writeTransferAnswer writes a transfer's answer ({"digest", "sequence",
// "receipt"}, the TransferAnswer schema), compact and without
// reflection: every transfer and trade answers with it, and the indented,
// map-based encoding cost more than the answer's signature. A retry
// answered with status 200 gets the same bytes as the first 201.
func (r *Realm) writeTransferAnswer(w http.ResponseWriter, status int, digest common.Hash, rc *assets.SignedReceipt) {
	bp := answerBuffers.Get().(*[]byte)
	b := append((*bp)[:0], `{"digest":"`...)
	b = append(b, digest.Hex()...)
	b = append(b, `","sequence":`...)
	b = strconv.AppendUint(b, rc.Receipt.Sequence, 10)
	b = append(b, `,"receipt":`...)
	b = r.assets.scheme.AppendReceiptJSON(b, rc)
	b = append(b, "}\n"...)
	writeBody(w, status, b)
	*bp = b
	answerBuffers.Put(bp)
}

func (r *Realm) handleTrade(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	body, err := readIntent(w, req)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	in, err := assets.DecodeTradeRequest(body)
	if err == nil {
		err = r.assets.ledger.CheckDomain(in.Domain)
	}
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	tr := in.Trade
	digest := r.assets.scheme.TradeDigest(&tr)
	retry, release, err := r.claimTransferKey(req, p, digest)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	if r.answerIfApplied(w, req, digest) {
		return
	}
	// The caller must own at least one leg; the other is the
	// counterparty's, and must come signed.
	sigFor := func(leg *assets.Transfer, given *assets.Signature) (assets.Signature, error) {
		g := ""
		if given != nil {
			g = given.String()
		}
		sig, err := r.ownerSignature(req, p, leg.From, g, digest)
		var re *assets.RejectError
		if errors.As(err, &re) && re.Reason == assets.ReasonNotYours && given != nil {
			return *given, nil
		}
		return sig, err
	}
	wallets, custodial := r.assets.ledger.Addresses(p.Avatar.ID)
	own := func(a common.Address) bool { return a == custodial || slices.Contains(wallets, a) }
	if !own(tr.Give.From) && !own(tr.Take.From) {
		release()
		r.edge.WriteError(w, req, &assets.RejectError{Reason: assets.ReasonNotYours, Detail: "neither leg of the trade comes from this avatar's addresses"})
		return
	}
	gs, err := sigFor(&tr.Give, in.GiveSignature)
	if err != nil {
		release()
		r.edge.WriteError(w, req, err)
		return
	}
	ts, err := sigFor(&tr.Take, in.TakeSignature)
	if err != nil {
		release()
		r.edge.WriteError(w, req, err)
		return
	}
	rc, err := r.assets.ledger.Trade(req.Context(), tr, gs, ts, r.authorizeTransfer(req, p, []*assets.Transfer{&tr.Give, &tr.Take}))
	if err != nil {
		release()
		r.settleRefusal(w, req, digest, retry, err)
		return
	}
	r.writeTransferAnswer(w, http.StatusCreated, digest, &rc)
}

type mintRequest struct {
	Collection string      `json:"collection"`
	Item       string      `json:"item,omitempty"`
	To         string      `json:"to"`
	Amount     assets.Uint `json:"amount,omitempty"`
}

// handleMint creates assets outside the scene catalogs; only avatars with
// the admin role may.
func (r *Realm) handleMint(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	resource := "Mint"
	if !slices.Contains(p.Avatar.Roles, r.assets.adminRole) {
		err := &edge.Error{Status: http.StatusForbidden, Detail: "minting needs the " + r.assets.adminRole + " role"}
		r.auditDeny(req, p.Avatar.ID, "MintAsset", resource, err)
		r.edge.WriteError(w, req, err)
		return
	}
	var in mintRequest
	if err := edge.DecodeJSON(w, req, &in); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	to, err := assets.ParseAddress(in.To)
	if err != nil {
		r.edge.WriteError(w, req, edge.BadRequest("to: "+err.Error()))
		return
	}
	seq, err := r.assets.ledger.Mint(req.Context(), in.Collection, in.Item, to, uint64(in.Amount))
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	r.auditAllow(req, p.Avatar.ID, "MintAsset", in.Collection+"/"+in.Item, "admin role", map[string]any{"to": to.Hex(), "amount": uint64(in.Amount)})
	edge.WriteJSON(w, http.StatusCreated, map[string]any{"sequence": seq})
}

// parseLedgerDigest reads a required digest in the same 0x form as an
// action digest.
func parseLedgerDigest(s string) (common.Hash, error) {
	b, err := parseDigest(s)
	if err != nil || b == nil {
		return common.Hash{}, edge.BadRequest("a digest is 0x followed by 64 hex digits")
	}
	return common.BytesToHash(b), nil
}

func (r *Realm) handleReceipt(w http.ResponseWriter, req *http.Request) {
	d, err := parseLedgerDigest(req.PathValue("digest"))
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	rc, err := r.assets.ledger.ReceiptFor(d)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, r.assets.scheme.ReceiptDocument(rc))
}

func (r *Realm) handleProof(w http.ResponseWriter, req *http.Request) {
	d, err := parseLedgerDigest(req.PathValue("digest"))
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	p, err := r.assets.ledger.Proof(d)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, r.assets.scheme.ProofDocument(p))
}

// handleReceipts lists a receipt chain (?chain=, default this node's)
// from index ?from= (default 0), at most ?limit= (default 100).
func (r *Realm) handleReceipts(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	chain := q.Get("chain")
	if chain == "" {
		chain = r.assets.ledger.Node()
	}
	var from uint64
	if f := q.Get("from"); f != "" {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			r.edge.WriteError(w, req, edge.BadRequest("from must be a whole number"))
			return
		}
		from = n
	}
	_, limit, err := pageParams(req)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	rs := r.assets.ledger.Receipts(chain, from, limit)
	out := make([]assets.ReceiptDocument, len(rs))
	for i, rc := range rs {
		out[i] = r.assets.scheme.ReceiptDocument(rc)
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"chain": chain, "chains": r.assets.ledger.Chains(), "receipts": out})
}

func (r *Realm) handleCheckpoints(w http.ResponseWriter, req *http.Request) {
	chain := req.URL.Query().Get("chain")
	if chain == "" {
		chain = r.assets.ledger.Node()
	}
	cps := r.assets.ledger.Checkpoints(chain)
	out := make([]assets.CheckpointDocument, len(cps))
	for i, c := range cps {
		out[i] = r.assets.scheme.CheckpointDocument(c)
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"chain": chain, "checkpoints": out})
}
