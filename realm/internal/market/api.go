package market

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// API is the marketplace's HTTP API. The realm registers its routes
// before it listens and binds the started Service before it reports
// ready; every route runs behind the edge's WhenReady, whose ready check
// orders that binding before any handler reads it.
type API struct {
	edge *edge.Edge
	s    *Service
}

// NewAPI returns the API, answering through e.
func NewAPI(e *edge.Edge) *API { return &API{edge: e} }

// Bind gives the API the started marketplace. The composition root calls
// it once, during start-up, before the realm reports ready.
func (api *API) Bind(s *Service) { api.s = s }

// Routes registers the marketplace's routes; one line each, which the
// realm's OpenAPI test reads.
func (api *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/assets/domain", api.edge.WhenReady(api.handleAssetDomain))
	mux.HandleFunc("GET /v1/assets/signers", api.edge.WhenReady(api.handleSigners))
	mux.HandleFunc("GET /v1/assets/collections", api.edge.WhenReady(api.handleCollections))
	mux.HandleFunc("GET /v1/assets/collections/{collection}", api.edge.WhenReady(api.handleCollection))
	mux.HandleFunc("GET /v1/assets/items/{collection}/{item}", api.edge.WhenReady(api.handleAsset))
	mux.HandleFunc("GET /v1/assets/owners/{address}", api.edge.WhenReady(api.handleOwner))
	mux.HandleFunc("GET /v1/assets/wallet", api.edge.Authed(api.handleWallet))
	mux.HandleFunc("POST /v1/assets/wallet/link/payload", api.edge.Authed(api.handleLinkPayload))
	mux.HandleFunc("POST /v1/assets/wallet/link", api.edge.Authed(api.handleLink))
	mux.HandleFunc("POST /v1/assets/wallet/custodial", api.edge.Authed(api.handleCustodial))
	mux.HandleFunc("POST /v1/assets/intents/transfer", api.edge.Public(api.handleTransferPayload))
	mux.HandleFunc("POST /v1/assets/intents/trade", api.edge.Public(api.handleTradePayload))
	mux.HandleFunc("POST /v1/assets/intents/cancel", api.edge.Public(api.handleCancelPayload))
	mux.HandleFunc("POST /v1/assets/transfers", api.edge.Authed(api.handleTransfer))
	mux.HandleFunc("POST /v1/assets/trades", api.edge.Authed(api.handleTrade))
	mux.HandleFunc("POST /v1/assets/cancel", api.edge.Authed(api.handleCancel))
	mux.HandleFunc("POST /v1/assets/mint", api.edge.Authed(api.handleMint))
	mux.HandleFunc("GET /v1/receipts", api.edge.WhenReady(api.handleReceipts))
	mux.HandleFunc("GET /v1/receipts/{digest}", api.edge.WhenReady(api.handleReceipt))
	mux.HandleFunc("GET /v1/receipts/{digest}/proof", api.edge.WhenReady(api.handleProof))
	mux.HandleFunc("GET /v1/checkpoints", api.edge.WhenReady(api.handleCheckpoints))
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
	transferAnswer struct {
		Digest   string                 `json:"digest"`
		Sequence uint64                 `json:"sequence"`
		Receipt  assets.ReceiptDocument `json:"receipt"`
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

func (api *API) handleAssetDomain(w http.ResponseWriter, _ *http.Request) {
	d := api.s.scheme.Domain()
	edge.WriteJSON(w, http.StatusOK, map[string]any{
		"domain":   assets.DomainMessage{Name: d.Name, Version: d.Version, ChainID: assets.Uint(d.ChainID), VerifyingContract: d.VerifyingContract.Hex()},
		"signer":   api.s.ledger.Signer().Hex(),
		"chain":    api.s.ledger.Node(),
		"treasury": api.s.ledger.Treasury().Hex(),
	})
}

func (api *API) handleCollections(w http.ResponseWriter, _ *http.Request) {
	out := []map[string]any{}
	for _, c := range api.s.ledger.Collections() {
		out = append(out, map[string]any{"id": c.ID, "scene": c.Scene, "name": c.Name, "kind": c.Kind, "soulbound": c.Soulbound, "decimals": c.Decimals})
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"collections": out})
}

// handleCollection lists a collection's items (unique) or balances
// (fungible), a page at a time; next is the cursor for ?after=.
func (api *API) handleCollection(w http.ResponseWriter, req *http.Request) {
	c, ok := api.s.ledger.Collection(req.PathValue("collection"))
	if !ok {
		api.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "no collection " + strconv.Quote(req.PathValue("collection"))})
		return
	}
	after, limit, err := pageParams(req)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	if c.Kind == assets.Unique {
		items, next := api.s.ledger.AssetsIn(c.ID, after, limit)
		out := make([]assetView, len(items))
		for i, a := range items {
			out[i] = viewAsset(a)
		}
		edge.WriteJSON(w, http.StatusOK, map[string]any{"collection": c.ID, "kind": c.Kind, "items": out, "next": next})
		return
	}
	bals, next := api.s.ledger.BalancesIn(c.ID, after, limit)
	out := make([]balanceView, len(bals))
	for i, b := range bals {
		out[i] = viewBalance(b)
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"collection": c.ID, "kind": c.Kind, "balances": out, "next": next})
}

func (api *API) handleAsset(w http.ResponseWriter, req *http.Request) {
	a, err := api.s.ledger.Asset(req.PathValue("collection"), req.PathValue("item"))
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, viewAsset(a))
}

func (api *API) handleOwner(w http.ResponseWriter, req *http.Request) {
	owner, err := assets.ParseAddress(req.PathValue("address"))
	if err != nil {
		api.edge.WriteError(w, req, edge.BadRequest(err.Error()))
		return
	}
	after, limit, err := pageParams(req)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	items, next := api.s.ledger.AssetsOf(owner, after, limit)
	iv := make([]assetView, len(items))
	for i, a := range items {
		iv[i] = viewAsset(a)
	}
	bals := api.s.ledger.BalancesOf(owner)
	bv := make([]balanceView, len(bals))
	for i, b := range bals {
		bv[i] = viewBalance(b)
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"owner": owner.Hex(), "items": iv, "balances": bv, "next": next,
		"next_nonce": strconv.FormatUint(api.s.ledger.NextNonce(owner), 10)})
}

func (api *API) handleWallet(w http.ResponseWriter, _ *http.Request, p edge.Principal) {
	wallets, custodial := api.s.ledger.Addresses(p.Avatar.ID)
	ws := []map[string]string{}
	for _, a := range wallets {
		ws = append(ws, map[string]string{"address": a.Hex(), "next_nonce": strconv.FormatUint(api.s.ledger.NextNonce(a), 10)})
	}
	out := map[string]any{"avatar": p.Avatar.ID, "wallets": ws}
	if custodial != (common.Address{}) {
		out["custodial"] = map[string]string{"address": custodial.Hex(), "next_nonce": strconv.FormatUint(api.s.ledger.NextNonce(custodial), 10)}
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

func (api *API) handleLinkPayload(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	var in linkRequest
	if err := edge.DecodeJSON(w, req, &in); err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	wallet, err := assets.ParseAddress(in.Wallet)
	if err != nil {
		api.edge.WriteError(w, req, edge.BadRequest("wallet: "+err.Error()))
		return
	}
	link := assets.LinkWallet{Avatar: p.Avatar.ID, Wallet: wallet, Deadline: uint64(time.Now().Add(linkDeadline).Unix())}
	edge.WriteJSON(w, http.StatusOK, typedPayload{TypedData: api.s.scheme.LinkTypedData(&link), Digest: api.s.scheme.LinkDigest(&link).Hex()})
}

func (api *API) handleLink(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	var in linkRequest
	if err := edge.DecodeJSON(w, req, &in); err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	wallet, err := assets.ParseAddress(in.Wallet)
	if err != nil {
		api.edge.WriteError(w, req, edge.BadRequest("wallet: "+err.Error()))
		return
	}
	sig, err := assets.ParseSignature(in.Signature)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	link := assets.LinkWallet{Avatar: p.Avatar.ID, Wallet: wallet, Deadline: uint64(in.Deadline)}
	if err := api.s.ledger.LinkWallet(req.Context(), link, sig); err != nil {
		api.s.audit.DenyQueued(req, p.Avatar.ID, "LinkWallet", "Wallet::"+strconv.Quote(wallet.Hex()), err)
		api.edge.WriteError(w, req, err)
		return
	}
	api.s.audit.AllowQueued(req, p.Avatar.ID, "LinkWallet", "Wallet::"+strconv.Quote(wallet.Hex()), "the wallet signed the LinkWallet message", nil)
	api.handleWallet(w, req, p)
}

func (api *API) handleCustodial(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	if _, err := api.s.ledger.Custodial(req.Context(), p.Avatar.ID); err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	api.handleWallet(w, req, p)
}

func (api *API) handleTransferPayload(w http.ResponseWriter, req *http.Request) {
	body, err := readIntent(w, req)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	in, err := assets.DecodeTransferRequest(body)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	if _, ok := api.s.ledger.Collection(in.Transfer.Collection); !ok {
		api.edge.WriteError(w, req, &assets.RejectError{Reason: assets.ReasonUnknownCollection, Detail: "no collection " + strconv.Quote(in.Transfer.Collection)})
		return
	}
	edge.WriteJSON(w, http.StatusOK, typedPayload{TypedData: api.s.scheme.TransferTypedData(&in.Transfer), Digest: api.s.scheme.TransferDigest(&in.Transfer).Hex()})
}

func (api *API) handleTradePayload(w http.ResponseWriter, req *http.Request) {
	body, err := readIntent(w, req)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	in, err := assets.DecodeTradeRequest(body)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, typedPayload{TypedData: api.s.scheme.TradeTypedData(&in.Trade), Digest: api.s.scheme.TradeDigest(&in.Trade).Hex()})
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

func (api *API) handleCancelPayload(w http.ResponseWriter, req *http.Request) {
	var in cancelRequest
	if err := edge.DecodeJSON(w, req, &in); err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	c, err := in.decode()
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, typedPayload{TypedData: api.s.scheme.CancelTypedData(&c), Digest: api.s.scheme.CancelDigest(&c).Hex()})
}

// handleCancel raises an owner's nonce floor, cancelling every intent
// signed with a lower nonce. The owner's signature authorizes it (a
// custodial owner's, after a step-up bound to the cancellation's digest).
func (api *API) handleCancel(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	var in cancelRequest
	if err := edge.DecodeJSON(w, req, &in); err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	c, err := in.decode()
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	sig, err := api.s.ownerSignature(req.Context(), p, c.Owner, in.Signature, api.s.scheme.CancelDigest(&c))
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	if err := api.s.ledger.CancelIntents(req.Context(), c, sig); err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"owner": c.Owner.Hex(), "next_nonce": strconv.FormatUint(api.s.ledger.NextNonce(c.Owner), 10)})
}

func (api *API) handleTransfer(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	body, err := readIntent(w, req)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	in, err := assets.DecodeTransferRequest(body)
	if err == nil {
		err = api.s.ledger.CheckDomain(in.Domain)
	}
	if err == nil {
		if _, ok := api.s.ledger.Collection(in.Transfer.Collection); !ok {
			err = &assets.RejectError{Reason: assets.ReasonUnknownCollection, Detail: "no collection " + strconv.Quote(in.Transfer.Collection)}
		}
	}
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	t := in.Transfer
	prepared := api.s.scheme.Prepare(t)
	digest := prepared.Digest()
	if prev, err := api.s.replay(req.Context(), p, req.Header.Get("Idempotency-Key"), digest); err != nil || prev != nil {
		if err != nil {
			api.edge.WriteError(w, req, err)
		} else {
			edge.WriteJSON(w, http.StatusOK, prev)
		}
		return
	}
	given := ""
	if in.Signature != nil {
		given = in.Signature.String()
	}
	sig, err := api.s.ownerSignature(req.Context(), p, t.From, given, digest)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	rc, err := api.s.ledger.TransferPrepared(req.Context(), prepared, sig, api.s.authorizeTransfer(p, []*assets.Transfer{&t}))
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	api.writeTransferAnswer(w, digest, &rc)
}

// answerBuffers recycles the buffers of transfer answers.
var answerBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// writeTransferAnswer writes what writeJSON would for a transferAnswer
// with status 201, compact and without reflection: every transfer and
// trade answers with it, and the indented, map-based encoding cost more
// than the answer's signature.
func (api *API) writeTransferAnswer(w http.ResponseWriter, digest common.Hash, rc *assets.SignedReceipt) {
	bp := answerBuffers.Get().(*[]byte)
	b := append((*bp)[:0], `{"digest":"`...)
	b = append(b, digest.Hex()...)
	b = append(b, `","sequence":`...)
	b = strconv.AppendUint(b, rc.Receipt.Sequence, 10)
	b = append(b, `,"receipt":`...)
	b = api.s.scheme.AppendReceiptJSON(b, rc)
	b = append(b, "}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(b)
	*bp = b
	answerBuffers.Put(bp)
}

func (api *API) handleTrade(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	body, err := readIntent(w, req)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	in, err := assets.DecodeTradeRequest(body)
	if err == nil {
		err = api.s.ledger.CheckDomain(in.Domain)
	}
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	tr := in.Trade
	digest := api.s.scheme.TradeDigest(&tr)
	if prev, err := api.s.replay(req.Context(), p, req.Header.Get("Idempotency-Key"), digest); err != nil || prev != nil {
		if err != nil {
			api.edge.WriteError(w, req, err)
		} else {
			edge.WriteJSON(w, http.StatusOK, prev)
		}
		return
	}
	// The caller must own at least one leg; the other is the
	// counterparty's, and must come signed.
	sigFor := func(leg *assets.Transfer, given *assets.Signature) (assets.Signature, error) {
		g := ""
		if given != nil {
			g = given.String()
		}
		sig, err := api.s.ownerSignature(req.Context(), p, leg.From, g, digest)
		var re *assets.RejectError
		if errors.As(err, &re) && re.Reason == assets.ReasonNotYours && given != nil {
			return *given, nil
		}
		return sig, err
	}
	wallets, custodial := api.s.ledger.Addresses(p.Avatar.ID)
	own := func(a common.Address) bool { return a == custodial || slices.Contains(wallets, a) }
	if !own(tr.Give.From) && !own(tr.Take.From) {
		api.edge.WriteError(w, req, &assets.RejectError{Reason: assets.ReasonNotYours, Detail: "neither leg of the trade comes from this avatar's addresses"})
		return
	}
	gs, err := sigFor(&tr.Give, in.GiveSignature)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	ts, err := sigFor(&tr.Take, in.TakeSignature)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	rc, err := api.s.ledger.Trade(req.Context(), tr, gs, ts, api.s.authorizeTransfer(p, []*assets.Transfer{&tr.Give, &tr.Take}))
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	api.writeTransferAnswer(w, digest, &rc)
}

type mintRequest struct {
	Collection string      `json:"collection"`
	Item       string      `json:"item,omitempty"`
	To         string      `json:"to"`
	Amount     assets.Uint `json:"amount,omitempty"`
}

// handleMint creates assets outside the scene catalogs; only avatars with
// the admin role may.
func (api *API) handleMint(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	resource := "Mint"
	if !slices.Contains(p.Avatar.Roles, api.s.adminRole) {
		err := &edge.Error{Status: http.StatusForbidden, Detail: "minting needs the " + api.s.adminRole + " role"}
		api.s.audit.DenyQueued(req, p.Avatar.ID, "MintAsset", resource, err)
		api.edge.WriteError(w, req, err)
		return
	}
	var in mintRequest
	if err := edge.DecodeJSON(w, req, &in); err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	to, err := assets.ParseAddress(in.To)
	if err != nil {
		api.edge.WriteError(w, req, edge.BadRequest("to: "+err.Error()))
		return
	}
	seq, err := api.s.ledger.Mint(req.Context(), in.Collection, in.Item, to, uint64(in.Amount))
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	api.s.audit.AllowQueued(req, p.Avatar.ID, "MintAsset", in.Collection+"/"+in.Item, "admin role", map[string]any{"to": to.Hex(), "amount": uint64(in.Amount)})
	edge.WriteJSON(w, http.StatusCreated, map[string]any{"sequence": seq})
}

// parseLedgerDigest reads a required digest in the same 0x form as an
// action digest.
func parseLedgerDigest(s string) (common.Hash, error) {
	h, ok := strings.CutPrefix(s, "0x")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != common.HashLength {
		return common.Hash{}, edge.BadRequest("a digest is 0x followed by 64 hex digits")
	}
	return common.BytesToHash(b), nil
}

func (api *API) handleReceipt(w http.ResponseWriter, req *http.Request) {
	d, err := parseLedgerDigest(req.PathValue("digest"))
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	rc, err := api.s.ledger.ReceiptFor(d)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, api.s.scheme.ReceiptDocument(rc))
}

func (api *API) handleProof(w http.ResponseWriter, req *http.Request) {
	d, err := parseLedgerDigest(req.PathValue("digest"))
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	p, err := api.s.ledger.Proof(d)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, api.s.scheme.ProofDocument(p))
}

// handleReceipts lists a receipt chain (?chain=, default this node's)
// from index ?from= (default 0), at most ?limit= (default 100).
func (api *API) handleReceipts(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	chain := q.Get("chain")
	if chain == "" {
		chain = api.s.ledger.Node()
	}
	var from uint64
	if f := q.Get("from"); f != "" {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			api.edge.WriteError(w, req, edge.BadRequest("from must be a whole number"))
			return
		}
		from = n
	}
	_, limit, err := pageParams(req)
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	rs := api.s.ledger.Receipts(chain, from, limit)
	out := make([]assets.ReceiptDocument, len(rs))
	for i, rc := range rs {
		out[i] = api.s.scheme.ReceiptDocument(rc)
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"chain": chain, "chains": api.s.ledger.Chains(), "receipts": out})
}

func (api *API) handleCheckpoints(w http.ResponseWriter, req *http.Request) {
	chain := req.URL.Query().Get("chain")
	if chain == "" {
		chain = api.s.ledger.Node()
	}
	cps := api.s.ledger.Checkpoints(chain)
	out := make([]assets.CheckpointDocument, len(cps))
	for i, c := range cps {
		out[i] = api.s.scheme.CheckpointDocument(c)
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"chain": chain, "checkpoints": out})
}

// handleSigners lists every realm node's receipt signers, current and
// retired (see Service.listSigners).
func (api *API) handleSigners(w http.ResponseWriter, req *http.Request) {
	out, err := api.s.listSigners(req.Context())
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"self": api.s.node, "signers": out})
}
