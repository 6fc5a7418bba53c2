package realm

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// marketScenes is a scene with a transferable unique collection, a
// soulbound one and a fungible one.
const marketScenes = "testdata"

// Market users, their intents and signatures (realmtest).
type (
	marketUser    = realmtest.MarketUser
	payloadAnswer = realmtest.PayloadAnswer
	transferReply = realmtest.TransferReply
)

var (
	signPayload   = realmtest.SignPayload
	newMarketUser = realmtest.NewMarketUser
	deadlineIn    = realmtest.DeadlineIn
	intent        = realmtest.Intent
	mint          = realmtest.Mint
	balanceOf     = realmtest.BalanceOf
)

// assetView and balanceView are what these tests read of the
// marketplace's asset and balance answers, as a client decodes them.
type (
	assetView struct {
		Collection string `json:"collection"`
		Item       string `json:"item"`
		Owner      string `json:"owner"`
		History    []struct {
			Digest string `json:"digest"`
		} `json:"history"`
	}
	balanceView struct {
		Collection string `json:"collection"`
		Balance    string `json:"balance"`
	}
)

func startMarket(t testing.TB) *Realm {
	return startRealm(t, Config{Listen: "localhost:0", ScenesDir: marketScenes})
}

func wantReason(t testing.TB, what string, code int, p edge.Problem, status int, reason assets.Reason) {
	t.Helper()
	if code != status || !strings.Contains(p.Detail, "("+string(reason)+")") {
		t.Fatalf("%s = %d %q, want %d with reason %s", what, code, p.Detail, status, reason)
	}
}

func TestAssetTransfersThroughAPI(t *testing.T) {
	r := startMarket(t)
	ada := newMarketUser(t, r, "ada")
	bob := newMarketUser(t, r, "bob")
	mint(t, r, "relics", "vase", ada.Wallet, 0)
	mint(t, r, "gems", "", ada.Wallet, 500)

	// A transfer signed by the wallet, with a receipt anyone can check.
	body := ada.SignedTransfer(t, intent("relics", "vase", 1, ada.Wallet, bob.Wallet, 1, deadlineIn(time.Hour)), ada.Key)
	var tr transferReply
	ada.C.Must("POST", "/v1/assets/transfers", body, &tr)
	raw, _ := json.Marshal(tr.Receipt.Receipt)
	var rtd apitypes.TypedData
	_ = json.Unmarshal(raw, &rtd)
	h, _, err := apitypes.TypedDataAndHash(rtd)
	if err != nil || common.BytesToHash(h).Hex() != tr.Receipt.Digest {
		t.Fatalf("receipt digest by apitypes = %x, %v; realm says %s", h, err, tr.Receipt.Digest)
	}
	sig, _ := assets.ParseSignature(tr.Receipt.Signature)
	signer, _ := assets.Recover(common.BytesToHash(h), sig)
	var dom struct {
		Signer string `json:"signer"`
	}
	ada.C.Must("GET", "/v1/assets/domain", nil, &dom)
	if signer.Hex() != dom.Signer || tr.Receipt.Signer != dom.Signer {
		t.Fatalf("receipt signed by %s (document says %s), realm signer %s", signer.Hex(), tr.Receipt.Signer, dom.Signer)
	}
	var asset assetView
	ada.C.Must("GET", "/v1/assets/items/relics/vase", nil, &asset)
	if asset.Owner != bob.Wallet.Hex() || len(asset.History) != 2 || asset.History[1].Digest != tr.Digest {
		t.Fatalf("GET asset = %+v, want bob's with a mint and the transfer", asset)
	}
	var owner struct {
		Items []assetView `json:"items"`
	}
	bob.C.Must("GET", "/v1/assets/owners/"+bob.Wallet.Hex(), nil, &owner)
	if len(owner.Items) != 1 || owner.Items[0].Item != "vase" {
		t.Fatalf("bob's items = %+v, want the vase", owner.Items)
	}

	// Idempotency-Key: the same request again answers the same receipt.
	pay := ada.SignedTransfer(t, intent("gems", "", 5, ada.Wallet, bob.Wallet, 2, deadlineIn(time.Hour)), ada.Key)
	first := doJSON(t, ada.C, "POST", "/v1/assets/transfers", pay, map[string]string{"Idempotency-Key": "k1"})
	again := doJSON(t, ada.C, "POST", "/v1/assets/transfers", pay, map[string]string{"Idempotency-Key": "k1"})
	if first.status != http.StatusCreated || again.status != http.StatusOK || first.body["digest"] != again.body["digest"] {
		t.Fatalf("idempotent retry = %d then %d, want 201 then 200 with one digest", first.status, again.status)
	}

	// Rejections, each with its reason, and no ledger change.
	before := r.market.Ledger().NextNonce(ada.Wallet)
	reuse := ada.SignedTransfer(t, intent("gems", "", 6, ada.Wallet, bob.Wallet, 2, deadlineIn(time.Hour)), ada.Key)
	code, p := ada.C.Call("POST", "/v1/assets/transfers", reuse, nil)
	wantReason(t, "another intent with a spent nonce", code, p, http.StatusConflict, assets.ReasonNonceUsed)

	expired := ada.SignedTransfer(t, intent("gems", "", 5, ada.Wallet, bob.Wallet, 3, deadlineIn(-time.Hour)), ada.Key)
	code, p = ada.C.Call("POST", "/v1/assets/transfers", expired, nil)
	wantReason(t, "expired intent", code, p, http.StatusForbidden, assets.ReasonExpired)

	otherChain := assets.NewScheme(assets.Domain{ChainID: 1})
	tOther := assets.Transfer{Collection: "gems", Amount: 5, From: ada.Wallet, To: bob.Wallet, Nonce: 4, Deadline: uint64(time.Now().Add(time.Hour).Unix())}
	sOther, _ := assets.Sign(otherChain.TransferDigest(&tOther), ada.Key)
	wrongChain := map[string]any{"intent": intent("gems", "", 5, ada.Wallet, bob.Wallet, 4, fmt.Sprint(tOther.Deadline)), "signature": sOther.String(),
		"domain": map[string]any{"name": "ZeroRealm", "version": "1", "chainId": 1, "verifyingContract": assets.DefaultVerifyingContract.Hex()}}
	code, p = ada.C.Call("POST", "/v1/assets/transfers", wrongChain, nil)
	wantReason(t, "wrong-chain intent", code, p, http.StatusForbidden, assets.ReasonWrongDomain)
	delete(wrongChain, "domain")
	code, p = ada.C.Call("POST", "/v1/assets/transfers", wrongChain, nil)
	wantReason(t, "wrong-chain intent without its domain", code, p, http.StatusForbidden, assets.ReasonWrongSigner)

	good := ada.SignedTransfer(t, intent("gems", "", 5, ada.Wallet, bob.Wallet, 5, deadlineIn(time.Hour)), ada.Key)
	s, _ := assets.ParseSignature(good["signature"].(string))
	n := crypto.S256().Params().N
	new(big.Int).Sub(n, new(big.Int).SetBytes(s[32:64])).FillBytes(s[32:64])
	s[64] = 55 - s[64]
	highS := map[string]any{"intent": good["intent"], "signature": s.String()}
	code, p = ada.C.Call("POST", "/v1/assets/transfers", highS, nil)
	wantReason(t, "high-s signature", code, p, http.StatusBadRequest, assets.ReasonHighS)

	wrongSigner := ada.SignedTransfer(t, intent("gems", "", 5, ada.Wallet, bob.Wallet, 6, deadlineIn(time.Hour)), bob.Key)
	code, p = ada.C.Call("POST", "/v1/assets/transfers", wrongSigner, nil)
	wantReason(t, "intent signed by another key", code, p, http.StatusForbidden, assets.ReasonWrongSigner)

	short := map[string]any{"intent": good["intent"], "signature": "0x1234"}
	code, p = ada.C.Call("POST", "/v1/assets/transfers", short, nil)
	wantReason(t, "short signature", code, p, http.StatusBadRequest, assets.ReasonSignatureEncoding)

	for name, in := range map[string]map[string]any{
		"unknown collection": {"intent": intent("nope", "", 5, ada.Wallet, bob.Wallet, 7, deadlineIn(time.Hour)), "signature": good["signature"]},
		"overflowing amount": {"intent": map[string]any{"collection": "gems", "assetId": "", "amount": "1" + strings.Repeat("0", 80), "from": ada.Wallet.Hex(), "to": bob.Wallet.Hex(), "nonce": "7", "deadline": deadlineIn(time.Hour)}},
		"amount beyond Long": {"intent": intent("gems", "", 1<<63, ada.Wallet, bob.Wallet, 7, deadlineIn(time.Hour))},
		"wrong type":         {"intent": map[string]any{"collection": 5}},
	} {
		code, p = ada.C.Call("POST", "/v1/assets/transfers", in, nil)
		if code != http.StatusBadRequest || !strings.Contains(p.Detail, "rejected (") {
			t.Errorf("%s = %d %q, want 400 with a reason", name, code, p.Detail)
		}
	}
	// Someone else's asset.
	notMine := bob.SignedTransfer(t, intent("gems", "", 1, ada.Wallet, bob.Wallet, 8, deadlineIn(time.Hour)), bob.Key)
	code, p = bob.C.Call("POST", "/v1/assets/transfers", notMine, nil)
	wantReason(t, "transfer from another avatar's wallet", code, p, http.StatusForbidden, assets.ReasonNotYours)
	if got := r.market.Ledger().NextNonce(ada.Wallet); got != before {
		t.Fatalf("next nonce after rejections = %d, want %d (nothing spent)", got, before)
	}
	if bal, _ := balanceOf(r, "gems", ada.Wallet); bal != 495 {
		t.Fatalf("ada's gems = %d, want 495", bal)
	}

	// The scene's policy: a soulbound medal never moves.
	mint(t, r, "medals", "ada-medal", ada.Wallet, 0)
	medal := ada.SignedTransfer(t, intent("medals", "ada-medal", 1, ada.Wallet, bob.Wallet, 9, deadlineIn(time.Hour)), ada.Key)
	code, p = ada.C.Call("POST", "/v1/assets/transfers", medal, nil)
	if code != http.StatusForbidden || !strings.Contains(p.Detail, "soulbound") {
		t.Fatalf("soulbound transfer = %d %q, want 403 naming the soulbound policy", code, p.Detail)
	}
}

type jsonReply struct {
	status int
	body   map[string]any
}

func doJSON(t testing.TB, c *apiClient, method, path string, body any, headers map[string]string) jsonReply {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, c.Base+path, strings.NewReader(string(data)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return jsonReply{resp.StatusCode, out}
}

func TestCustodialTransferNeedsStepUp(t *testing.T) {
	r := startMarket(t)
	ada := newMarketUser(t, r, "ada")
	var w struct {
		Custodial struct {
			Address string `json:"address"`
		} `json:"custodial"`
	}
	ada.C.Must("POST", "/v1/assets/wallet/custodial", nil, &w)
	custodial := common.HexToAddress(w.Custodial.Address)
	mint(t, r, "relics", "cup", custodial, 0)
	in := map[string]any{"intent": intent("relics", "cup", 1, custodial, ada.Wallet, 1, deadlineIn(time.Hour))}
	var p payloadAnswer
	ada.C.Must("POST", "/v1/assets/intents/transfer", in, &p)
	code, prob := ada.C.Call("POST", "/v1/assets/transfers", in, nil)
	if code != http.StatusForbidden || !strings.Contains(prob.Detail, p.Digest) {
		t.Fatalf("custodial transfer without step-up = %d %q, want 403 naming digest %s", code, prob.Detail, p.Digest)
	}
	if code, prob := ada.C.StepUp(ada.Auth, p.Digest); code != http.StatusOK {
		t.Fatalf("step-up = %d %+v", code, prob)
	}
	var tr transferReply
	ada.C.Must("POST", "/v1/assets/transfers", in, &tr)
	if tr.Digest != p.Digest {
		t.Fatalf("transfer digest = %s, want %s", tr.Digest, p.Digest)
	}
	// The same intent again moves nothing: it answers its receipt, with
	// no second step-up.
	var again transferReply
	if code, prob := ada.C.Call("POST", "/v1/assets/transfers", in, &again); code != http.StatusOK || again.Digest != p.Digest {
		t.Fatalf("custodial intent sent again = %d %+v, want 200 with its receipt", code, prob)
	}
}

// raceTransfers sends n different intents for one asset at once, spread
// over the realms, and counts the successes (realmtest.RaceTransfers).
func raceTransfers(t *testing.T, realms []*Realm, u *marketUser, item string, n int) (ok int, codes map[int]int) {
	urls := make([]string, len(realms))
	for i, r := range realms {
		urls[i] = r.URL()
	}
	return realmtest.RaceTransfers(t, urls, u, item, n)
}

func TestConcurrentTransfersOneWins(t *testing.T) {
	r := startMarket(t)
	ada := newMarketUser(t, r, "ada")
	mint(t, r, "relics", "orb", ada.Wallet, 0)
	ok, codes := raceTransfers(t, []*Realm{r}, ada, "orb", 100)
	if ok != 1 || codes[http.StatusConflict] != 99 {
		t.Fatalf("100 concurrent transfers of one asset: statuses %v, want one 201 and 99 409", codes)
	}
	a, _ := r.market.Ledger().Asset("relics", "orb")
	if len(a.History) != 2 {
		t.Fatalf("orb history has %d events, want mint + one transfer", len(a.History))
	}
}

func TestTradeWithStaleLegChangesNothing(t *testing.T) {
	r := startMarket(t)
	ada := newMarketUser(t, r, "ada")
	bob := newMarketUser(t, r, "bob")
	mint(t, r, "relics", "mask", ada.Wallet, 0)
	mint(t, r, "gems", "", bob.Wallet, 100)
	dl := deadlineIn(time.Hour)
	trade := map[string]any{
		"give": intent("relics", "mask", 1, ada.Wallet, bob.Wallet, 1, dl),
		"take": intent("gems", "", 40, bob.Wallet, ada.Wallet, 1, dl),
	}
	var p payloadAnswer
	ada.C.Must("POST", "/v1/assets/intents/trade", trade, &p)
	gs := signPayload(t, p.TypedData, p.Digest, ada.Key)
	ts := signPayload(t, p.TypedData, p.Digest, bob.Key)
	// Ada moves the mask elsewhere first: the give leg is stale.
	away := ada.SignedTransfer(t, intent("relics", "mask", 1, ada.Wallet, common.HexToAddress("0x00000000000000000000000000000000000000aa"), 2, dl), ada.Key)
	ada.C.Must("POST", "/v1/assets/transfers", away, nil)
	applied := r.market.Ledger().NextNonce(bob.Wallet)
	body := map[string]any{"give": trade["give"], "take": trade["take"], "give_signature": gs, "take_signature": ts}
	code, prob := ada.C.Call("POST", "/v1/assets/trades", body, nil)
	wantReason(t, "trade with a stale leg", code, prob, http.StatusConflict, assets.ReasonNotOwner)
	if bal, _ := balanceOf(r, "gems", bob.Wallet); bal != 100 || r.market.Ledger().NextNonce(bob.Wallet) != applied {
		t.Fatalf("after the refused trade bob holds %d gems (want 100) and next nonce %d (want %d)", bal, r.market.Ledger().NextNonce(bob.Wallet), applied)
	}
	// A fresh trade goes through, both legs at once.
	mint(t, r, "relics", "mask2", ada.Wallet, 0)
	trade2 := map[string]any{"give": intent("relics", "mask2", 1, ada.Wallet, bob.Wallet, 3, dl), "take": intent("gems", "", 40, bob.Wallet, ada.Wallet, 2, dl)}
	ada.C.Must("POST", "/v1/assets/intents/trade", trade2, &p)
	body = map[string]any{"give": trade2["give"], "take": trade2["take"], "give_signature": signPayload(t, p.TypedData, p.Digest, ada.Key), "take_signature": signPayload(t, p.TypedData, p.Digest, bob.Key)}
	ada.C.Must("POST", "/v1/assets/trades", body, nil)
	if bal, _ := balanceOf(r, "gems", ada.Wallet); bal != 40 {
		t.Fatalf("ada's gems after the trade = %d, want 40", bal)
	}
}

// TestTransferWaitsForItsAuditRecord: a transfer is answered only once its
// authorization is stored in the audit chain, and a transfer whose
// authorization cannot be stored does not happen: 503, the asset stays
// put and the intent's nonce stays unspent.
func TestTransferWaitsForItsAuditRecord(t *testing.T) {
	r := startMarket(t)
	ada := newMarketUser(t, r, "ada")
	bob := newMarketUser(t, r, "bob")
	mint(t, r, "relics", "jug", ada.Wallet, 0)
	mint(t, r, "relics", "bowl", ada.Wallet, 0)

	var tr transferReply
	ada.C.Must("POST", "/v1/assets/transfers", ada.SignedTransfer(t, intent("relics", "jug", 1, ada.Wallet, bob.Wallet, 1, deadlineIn(time.Hour)), ada.Key), &tr)
	// Read the chain as stored, not through the view, right after the
	// answer: no waiting.
	ctx := context.Background()
	found := storedAudit(t, r, func(ev audit.Event) bool {
		return ev.Action == "TransferAsset" && ev.Outcome == audit.Allow && strings.Contains(ev.Resource, `relics/jug"`)
	})
	if !found {
		t.Fatal("the transfer was answered before its TransferAsset decision was stored")
	}
	if rep, err := audit.Verify(ctx, r.store, r.cfg.Node); err != nil || !rep.OK() {
		t.Fatalf("audit chain after the transfer = %+v, %v; want intact", rep, err)
	}

	// With the audit log unable to store anything, the next transfer is
	// refused before the ledger changes.
	if err := r.audit.Close(ctx); err != nil {
		t.Fatal(err)
	}
	nonce := r.market.Ledger().NextNonce(ada.Wallet)
	body := ada.SignedTransfer(t, intent("relics", "bowl", 1, ada.Wallet, bob.Wallet, nonce, deadlineIn(time.Hour)), ada.Key)
	code, p := ada.C.Call("POST", "/v1/assets/transfers", body, nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(p.Detail, "audit log") {
		t.Fatalf("transfer with the audit log closed = %d %q, want 503 naming the audit log", code, p.Detail)
	}
	if a, err := r.market.Ledger().Asset("relics", "bowl"); err != nil || a.Owner != ada.Wallet {
		t.Fatalf("bowl after the refused transfer = %+v, %v; want still ada's", a, err)
	}
	if got := r.market.Ledger().NextNonce(ada.Wallet); got != nonce {
		t.Fatalf("next nonce after the refused transfer = %d, want %d (unspent)", got, nonce)
	}
}
