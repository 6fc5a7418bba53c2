package market

import (
	"net/http"
	"strconv"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// parseLedgerDigest reads a required digest in the same 0x form as an
// action digest.
func parseLedgerDigest(s string) (common.Hash, error) {
	b, err := edge.ParseDigest(s)
	if err != nil || b == nil {
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
// retired (see Service.Signers).
func (api *API) handleSigners(w http.ResponseWriter, req *http.Request) {
	out, err := api.s.Signers(req.Context())
	if err != nil {
		api.edge.WriteError(w, req, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"self": api.s.node, "signers": out})
}
