package market

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
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
	mux.HandleFunc("POST /v1/assets/transfers", api.edge.AuthedOrAgent(api.handleTransfer))
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
