package market

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// Problem is an RFC 9457 error answer of the realm. Type is the stable
// URI of its cause (docs/errors.md lists them); branch on it, not on
// Detail.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Instance  string `json:"instance"`
	RequestID string `json:"request_id"`
	// Effect, on a 503 that could not tell what happened, is "none" (the
	// request changed nothing) or "unknown" (a write may have been stored:
	// read before repeating it).
	Effect string `json:"effect,omitempty"`
}

func (p *Problem) Error() string { return fmt.Sprintf("realm: %d %s: %s", p.Status, p.Title, p.Detail) }

// Reason is the rejection reason in a Problem's detail ("nonce-used",
// "expired", ...), or "" when there is none.
func (p *Problem) Reason() string {
	_, rest, ok := strings.Cut(p.Detail, "rejected (")
	if !ok {
		return ""
	}
	r, _, _ := strings.Cut(rest, ")")
	return r
}

// Client talks to one realm as one signed-in avatar (Token may be empty
// for the public calls). It is safe for concurrent use.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// New returns a client of the realm at baseURL with a session token.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Domain is the EIP-712 domain of a realm.
type Domain struct {
	Name              string `json:"name"`
	Version           string `json:"version"`
	ChainID           string `json:"chainId"`
	VerifyingContract string `json:"verifyingContract"`
}

// DomainInfo is what GET /v1/assets/domain answers.
type DomainInfo struct {
	Domain   Domain `json:"domain"`
	Signer   string `json:"signer"`
	Chain    string `json:"chain"`
	Treasury string `json:"treasury"`
}

// Transfer is a transfer intent, as the message of its typed data.
type Transfer struct {
	Collection string `json:"collection"`
	AssetID    string `json:"assetId"`
	Amount     string `json:"amount"`
	From       string `json:"from"`
	To         string `json:"to"`
	Nonce      string `json:"nonce"`
	Deadline   string `json:"deadline"`
}

// TransferRequest applies a transfer; Signature is empty for a custodial
// owner (the realm then wants a passkey step-up of the digest).
type TransferRequest struct {
	Intent    Transfer `json:"intent"`
	Signature string   `json:"signature,omitempty"`
}

// TradeRequest applies two legs atomically.
type TradeRequest struct {
	Give          Transfer `json:"give"`
	Take          Transfer `json:"take"`
	GiveSignature string   `json:"give_signature,omitempty"`
	TakeSignature string   `json:"take_signature,omitempty"`
}

// Payload is typed data to sign and the realm's digest of it.
type Payload struct {
	TypedData json.RawMessage `json:"typed_data"`
	Digest    string          `json:"digest"`
}

// ReceiptDocument is a realm-signed receipt, with its inclusion proof when
// fetched with Proof.
type ReceiptDocument struct {
	Receipt   json.RawMessage `json:"receipt"`
	Digest    string          `json:"digest"`
	Signature string          `json:"signature"`
	Signer    string          `json:"signer"`
	Time      string          `json:"time"`
	Proof     json.RawMessage `json:"proof,omitempty"`
}

// TransferAnswer is the realm's answer to an applied intent.
type TransferAnswer struct {
	Digest   string          `json:"digest"`
	Sequence uint64          `json:"sequence"`
	Receipt  ReceiptDocument `json:"receipt"`
}

// Holdings is what an owner holds.
type Holdings struct {
	Owner     string            `json:"owner"`
	Items     []json.RawMessage `json:"items"`
	Balances  []Balance         `json:"balances"`
	Next      string            `json:"next"`
	NextNonce string            `json:"next_nonce"`
}

// Balance is a fungible balance.
type Balance struct {
	Collection string `json:"collection"`
	Owner      string `json:"owner"`
	Balance    string `json:"balance"`
}

func (c *Client) do(ctx context.Context, method, path string, body any, headers map[string]string, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return 0, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 400 {
		p := &Problem{Status: resp.StatusCode}
		if json.Unmarshal(data, p) != nil {
			p.Detail = strings.TrimSpace(string(data))
		}
		return resp.StatusCode, p
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("market: decode %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// Domain fetches the realm's EIP-712 domain and receipt signer.
func (c *Client) Domain(ctx context.Context) (DomainInfo, error) {
	var d DomainInfo
	_, err := c.do(ctx, "GET", "/v1/assets/domain", nil, nil, &d)
	return d, err
}

// Holdings lists what owner holds, and its next usable nonce.
func (c *Client) Holdings(ctx context.Context, owner string) (Holdings, error) {
	var h Holdings
	_, err := c.do(ctx, "GET", "/v1/assets/owners/"+owner, nil, nil, &h)
	return h, err
}

// LinkWallet links the wallet of signer to the signed-in avatar: the
// wallet signs the realm's LinkWallet message.
func (c *Client) LinkWallet(ctx context.Context, signer Signer) error {
	wallet := signer.Address().Hex()
	var p Payload
	if _, err := c.do(ctx, "POST", "/v1/assets/wallet/link/payload", map[string]string{"wallet": wallet}, nil, &p); err != nil {
		return err
	}
	sig, err := SignPayload(ctx, signer, p)
	if err != nil {
		return err
	}
	var td struct {
		Message struct {
			Deadline string `json:"deadline"`
		} `json:"message"`
	}
	if err := json.Unmarshal(p.TypedData, &td); err != nil {
		return fmt.Errorf("market: LinkWallet typed data: %w", err)
	}
	_, err = c.do(ctx, "POST", "/v1/assets/wallet/link", map[string]string{"wallet": wallet, "deadline": td.Message.Deadline, "signature": sig}, nil, nil)
	return err
}

// Address is one of an avatar's addresses with the nonce its next intent
// must carry.
type Address struct {
	Address   string `json:"address"`
	NextNonce string `json:"next_nonce"`
}

// Wallet is the signed-in avatar's linked wallets and custodial address
// (nil until created).
type Wallet struct {
	Avatar    string    `json:"avatar"`
	Wallets   []Address `json:"wallets"`
	Custodial *Address  `json:"custodial,omitempty"`
}

// Wallet returns the signed-in avatar's addresses.
func (c *Client) Wallet(ctx context.Context) (Wallet, error) {
	var w Wallet
	_, err := c.do(ctx, "GET", "/v1/assets/wallet", nil, nil, &w)
	return w, err
}

// CreateCustodial creates the signed-in avatar's custodial address (or
// returns the one it has). The realm holds its key; intents from it are
// confirmed with a passkey step-up instead of a signature.
func (c *Client) CreateCustodial(ctx context.Context) (Wallet, error) {
	var w Wallet
	_, err := c.do(ctx, "POST", "/v1/assets/wallet/custodial", nil, nil, &w)
	return w, err
}

// ReceiptSigner is one realm node's receipt-signing key.
type ReceiptSigner struct {
	Node    string `json:"node"`
	Address string `json:"address"`
	Since   string `json:"since"`
	Until   string `json:"until,omitempty"`
	Current bool   `json:"current"`
}

// ReceiptSigners lists every realm node's receipt signers, current and
// retired. A convenience: verifiers that must not trust the realm pin the
// keys offline (zerorealm keys export-public).
func (c *Client) ReceiptSigners(ctx context.Context) ([]ReceiptSigner, error) {
	var out struct {
		Signers []ReceiptSigner `json:"signers"`
	}
	_, err := c.do(ctx, "GET", "/v1/assets/signers", nil, nil, &out)
	return out.Signers, err
}

// TransferPayload asks the realm for the typed data of t.
func (c *Client) TransferPayload(ctx context.Context, t Transfer) (Payload, error) {
	var p Payload
	_, err := c.do(ctx, "POST", "/v1/assets/intents/transfer", TransferRequest{Intent: t}, nil, &p)
	return p, err
}

// SignTransfer gets t's typed data and has signer, t's owner, sign it.
func (c *Client) SignTransfer(ctx context.Context, t Transfer, signer Signer) (TransferRequest, error) {
	p, err := c.TransferPayload(ctx, t)
	if err != nil {
		return TransferRequest{}, err
	}
	sig, err := SignPayload(ctx, signer, p)
	return TransferRequest{Intent: t, Signature: sig}, err
}

// Transfer applies a transfer. A non-empty idempotencyKey makes a retry of
// the same request answer the same receipt.
func (c *Client) Transfer(ctx context.Context, req TransferRequest, idempotencyKey string) (TransferAnswer, error) {
	var a TransferAnswer
	var h map[string]string
	if idempotencyKey != "" {
		h = map[string]string{"Idempotency-Key": idempotencyKey}
	}
	_, err := c.do(ctx, "POST", "/v1/assets/transfers", req, h, &a)
	return a, err
}

// TradePayload asks the realm for the typed data both owners sign.
func (c *Client) TradePayload(ctx context.Context, give, take Transfer) (Payload, error) {
	var p Payload
	_, err := c.do(ctx, "POST", "/v1/assets/intents/trade", TradeRequest{Give: give, Take: take}, nil, &p)
	return p, err
}

// Trade applies both legs of a trade or neither.
func (c *Client) Trade(ctx context.Context, req TradeRequest, idempotencyKey string) (TransferAnswer, error) {
	var a TransferAnswer
	var h map[string]string
	if idempotencyKey != "" {
		h = map[string]string{"Idempotency-Key": idempotencyKey}
	}
	_, err := c.do(ctx, "POST", "/v1/assets/trades", req, h, &a)
	return a, err
}

// Cancel is a CancelIntents message: every intent of Owner with a nonce
// below NonceFloor becomes void. Fields are decimal strings, as in the
// typed data.
type Cancel struct {
	Owner      string `json:"owner"`
	NonceFloor string `json:"nonceFloor"`
	Deadline   string `json:"deadline"`
	Signature  string `json:"signature,omitempty"`
}

// CancelPayload asks the realm for the typed data of a cancellation.
func (c *Client) CancelPayload(ctx context.Context, cancel Cancel) (Payload, error) {
	var p Payload
	cancel.Signature = ""
	_, err := c.do(ctx, "POST", "/v1/assets/intents/cancel", cancel, nil, &p)
	return p, err
}

// SignCancel gets the cancellation's typed data and has signer, its
// owner, sign it.
func (c *Client) SignCancel(ctx context.Context, cancel Cancel, signer Signer) (Cancel, error) {
	p, err := c.CancelPayload(ctx, cancel)
	if err != nil {
		return Cancel{}, err
	}
	cancel.Signature, err = SignPayload(ctx, signer, p)
	return cancel, err
}

// CancelIntents raises the owner's nonce floor, voiding every intent it
// signed with a lower nonce, and returns the owner's next nonce. The
// owner is a wallet linked to the signed-in avatar (with its Signature)
// or the avatar's custodial address (no signature; a passkey step-up
// bound to the cancellation's digest instead).
func (c *Client) CancelIntents(ctx context.Context, cancel Cancel) (nextNonce string, err error) {
	var out struct {
		NextNonce string `json:"next_nonce"`
	}
	_, err = c.do(ctx, "POST", "/v1/assets/cancel", cancel, nil, &out)
	return out.NextNonce, err
}

// Mint creates assets outside the scene catalogs: item (unique
// collections) or amount (fungible ones) to an address. It needs the
// realm's admin role and returns the ledger sequence.
func (c *Client) Mint(ctx context.Context, collection, item, to, amount string) (uint64, error) {
	body := map[string]string{"collection": collection, "to": to}
	if item != "" {
		body["item"] = item
	}
	if amount != "" {
		body["amount"] = amount
	}
	var out struct {
		Sequence uint64 `json:"sequence"`
	}
	_, err := c.do(ctx, "POST", "/v1/assets/mint", body, nil, &out)
	return out.Sequence, err
}

// Receipt fetches a receipt by intent or receipt digest.
func (c *Client) Receipt(ctx context.Context, digest string) (ReceiptDocument, error) {
	var d ReceiptDocument
	_, err := c.do(ctx, "GET", "/v1/receipts/"+digest, nil, nil, &d)
	return d, err
}

// Proof fetches a receipt with its inclusion proof.
func (c *Client) Proof(ctx context.Context, digest string) (ReceiptDocument, error) {
	var d ReceiptDocument
	_, err := c.do(ctx, "GET", "/v1/receipts/"+digest+"/proof", nil, nil, &d)
	return d, err
}

// ErrUntrustedSigner reports a receipt signed by none of the trusted keys.
var ErrUntrustedSigner = errors.New("market: receipt signed by an untrusted key")

// VerifyReceipt checks a receipt offline: it hashes the typed data with
// go-ethereum's EIP-712 code, refuses malleable (high-s) signatures,
// recovers the signer and, when trusted is not empty, requires it to be
// one of them. It returns the signer's EIP-55 address.
func VerifyReceipt(doc ReceiptDocument, trusted ...string) (string, error) {
	var td apitypes.TypedData
	if err := json.Unmarshal(doc.Receipt, &td); err != nil {
		return "", fmt.Errorf("market: receipt typed data: %w", err)
	}
	if td.PrimaryType != "Receipt" {
		return "", fmt.Errorf("market: typed data is a %q, not a Receipt", td.PrimaryType)
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		return "", fmt.Errorf("market: receipt typed data: %w", err)
	}
	if doc.Digest != "" && !strings.EqualFold(doc.Digest, common.BytesToHash(h).Hex()) {
		return "", fmt.Errorf("market: the receipt's digest %s is not its typed data's %s", doc.Digest, common.BytesToHash(h).Hex())
	}
	sig := common.FromHex(doc.Signature)
	if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) || !strings.HasPrefix(doc.Signature, "0x") {
		return "", errors.New("market: a signature is 0x and 65 bytes with v 27 or 28")
	}
	var r, s [32]byte
	copy(r[:], sig[:32])
	copy(s[:], sig[32:64])
	if !crypto.ValidateSignatureValues(sig[64]-27, new(big.Int).SetBytes(r[:]), new(big.Int).SetBytes(s[:]), true) {
		return "", errors.New("market: the receipt's signature is malleable (high s) or out of range")
	}
	raw := append([]byte(nil), sig...)
	raw[64] -= 27
	pub, err := crypto.SigToPub(h, raw)
	if err != nil {
		return "", fmt.Errorf("market: recover signer: %w", err)
	}
	signer := crypto.PubkeyToAddress(*pub).Hex()
	if len(trusted) == 0 {
		return signer, nil
	}
	for _, t := range trusted {
		if strings.EqualFold(t, signer) {
			return signer, nil
		}
	}
	return signer, fmt.Errorf("%w: %s", ErrUntrustedSigner, signer)
}
