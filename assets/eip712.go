package assets

import (
	"fmt"
	"strconv"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/internal/eip712"
)

// The EIP-712 type strings. They are the contract with every wallet and
// verifier, so they never change without a new domain version; their hashes
// are computed once, at start-up.
const (
	transferTypeString   = "Transfer(string collection,string assetId,uint256 amount,address from,address to,uint256 nonce,uint256 deadline)"
	tradeTypeString      = "Trade(Transfer give,Transfer take)" + transferTypeString
	receiptTypeString    = "Receipt(bytes32 intent,uint256 sequence,string chain,uint256 index,bytes32 previous,uint256 time)"
	checkpointTypeString = "Checkpoint(string chain,uint256 first,uint256 count,bytes32 root,bytes32 previous,uint256 time)"
	linkTypeString       = "LinkWallet(string avatar,address wallet,uint256 deadline)"
	cancelTypeString     = "CancelIntents(address owner,uint256 nonceFloor,uint256 deadline)"
)

var (
	transferTypeHash   = eip712.TypeHash(transferTypeString)
	tradeTypeHash      = eip712.TypeHash(tradeTypeString)
	receiptTypeHash    = eip712.TypeHash(receiptTypeString)
	checkpointTypeHash = eip712.TypeHash(checkpointTypeString)
	linkTypeHash       = eip712.TypeHash(linkTypeString)
	cancelTypeHash     = eip712.TypeHash(cancelTypeString)
)

// Domain defaults. The chain id is not that of any public network, so a
// signature made for the realm can never be replayed on one, and the
// verifying contract is a fixed marker address: the ledger lives in
// JetStream, not in a contract, but wallets show the field and some refuse
// a domain without it.
const (
	DefaultDomainName    = "ZeroRealm"
	DefaultDomainVersion = "1"
	DefaultChainID       = 23122 // 0x5a52, "ZR"
)

// DefaultVerifyingContract is the documented default verifyingContract.
var DefaultVerifyingContract = common.HexToAddress("0x5A52000000000000000000000000000000000712")

// Domain is the EIP-712 domain every realm signature is bound to.
type Domain struct {
	Name              string
	Version           string
	ChainID           uint64
	VerifyingContract common.Address
}

// Scheme hashes the realm's typed data for one domain. The domain separator
// is computed once; every digest after that is a fixed number of keccak
// calls with no reflection, so signing and verifying cost little more than
// the elliptic-curve work itself.
type Scheme struct {
	domain    Domain
	separator common.Hash
	// receiptHead is the constant start of every receipt document's JSON
	// (types and domain), encoded once for AppendReceiptJSON.
	receiptHead []byte
}

// NewScheme fills the domain's zero fields with the defaults.
func NewScheme(d Domain) *Scheme {
	if d.Name == "" {
		d.Name = DefaultDomainName
	}
	if d.Version == "" {
		d.Version = DefaultDomainVersion
	}
	if d.ChainID == 0 {
		d.ChainID = DefaultChainID
	}
	if d.VerifyingContract == (common.Address{}) {
		d.VerifyingContract = DefaultVerifyingContract
	}
	sep := eip712.Domain{Name: d.Name, Version: d.Version, ChainID: d.ChainID, VerifyingContract: d.VerifyingContract}.Separator()
	sc := &Scheme{domain: d, separator: sep}
	sc.receiptHead = receiptHead(sc)
	return sc
}

// Domain is the scheme's domain with defaults filled in.
func (s *Scheme) Domain() Domain { return s.domain }

// Separator is the EIP-712 domain separator.
func (s *Scheme) Separator() common.Hash { return s.separator }

// digest is keccak256(0x19 0x01 || separator || structHash).
func (s *Scheme) digest(structHash common.Hash) common.Hash {
	return eip712.Digest(s.separator, structHash)
}

// Transfer moves Amount of an asset from one owner to another. AssetID is
// the item of a unique collection, "" for a fungible balance (Amount is
// then the number of base units; for a unique item it is 1).
type Transfer struct {
	Collection string
	AssetID    string
	Amount     uint64
	From       common.Address
	To         common.Address
	Nonce      uint64
	Deadline   uint64 // unix seconds
}

func transferStructHash(t *Transfer) common.Hash {
	// Collections repeat from one transfer to the next; items of a
	// unique collection rarely do.
	return eip712.New(transferTypeHash).String(t.Collection).UniqueString(t.AssetID).Uint64(t.Amount).
		Address(t.From).Address(t.To).Uint64(t.Nonce).Uint64(t.Deadline).Hash()
}

// TransferDigest is the digest the owner signs for t.
func (s *Scheme) TransferDigest(t *Transfer) common.Hash { return s.digest(transferStructHash(t)) }

// PreparedTransfer is a transfer with its digest under one scheme,
// computed once: the realm needs the digest before the ledger does
// (idempotency keys, custodial step-ups), and hashing it again costs a
// few keccak rounds per transfer. Its fields are unexported, so the
// digest is always the transfer's own.
type PreparedTransfer struct {
	t      Transfer
	digest common.Hash
	scheme *Scheme
}

// Prepare computes t's digest for Ledger.TransferPrepared.
func (s *Scheme) Prepare(t Transfer) PreparedTransfer {
	return PreparedTransfer{t: t, digest: s.TransferDigest(&t), scheme: s}
}

// Transfer is the prepared transfer.
func (p *PreparedTransfer) Transfer() Transfer { return p.t }

// Digest is the transfer's EIP-712 digest.
func (p *PreparedTransfer) Digest() common.Hash { return p.digest }

// Trade swaps two transfers atomically: both owners sign the same Trade,
// so neither leg can be taken without the other.
type Trade struct {
	Give Transfer
	Take Transfer
}

// TradeDigest is the digest both owners of a trade sign.
func (s *Scheme) TradeDigest(t *Trade) common.Hash {
	g, k := transferStructHash(&t.Give), transferStructHash(&t.Take)
	return eip712.New(tradeTypeHash).Word(g).Word(k).Digest(s.separator)
}

// Receipt is the realm's countersignature of an applied intent: the
// intent's digest, the ledger sequence that applied it, and its place in
// the signing node's receipt chain.
type Receipt struct {
	Intent   common.Hash
	Sequence uint64
	Chain    string
	Index    uint64
	Previous common.Hash // digest of the chain's previous receipt; zero for the first
	Time     uint64      // unix seconds
}

// ReceiptDigest is the digest the realm signs for r; it is also the hash by
// which the next receipt of the chain links to r.
func (s *Scheme) ReceiptDigest(r *Receipt) common.Hash {
	return eip712.New(receiptTypeHash).Word(r.Intent).Uint64(r.Sequence).String(r.Chain).Uint64(r.Index).
		Word(r.Previous).Uint64(r.Time).Digest(s.separator)
}

// Checkpoint signs the Merkle root of receipts First..First+Count-1 of a
// chain, and links to the chain's previous checkpoint.
type Checkpoint struct {
	Chain    string
	First    uint64
	Count    uint64
	Root     common.Hash
	Previous common.Hash
	Time     uint64
}

// CheckpointDigest is the digest the realm signs for c.
func (s *Scheme) CheckpointDigest(c *Checkpoint) common.Hash {
	return eip712.New(checkpointTypeHash).String(c.Chain).Uint64(c.First).Uint64(c.Count).
		Word(c.Root).Word(c.Previous).Uint64(c.Time).Digest(s.separator)
}

// LinkWallet is signed by a wallet to attach it to an avatar.
type LinkWallet struct {
	Avatar   string
	Wallet   common.Address
	Deadline uint64
}

// LinkDigest is the digest a wallet signs to link itself to an avatar.
func (s *Scheme) LinkDigest(l *LinkWallet) common.Hash {
	return eip712.New(linkTypeHash).UniqueString(l.Avatar).Address(l.Wallet).Uint64(l.Deadline).Digest(s.separator)
}

// CancelIntents raises the owner's nonce floor: every intent of the owner
// with a lower nonce, signed or not yet used, stops being valid at once.
type CancelIntents struct {
	Owner      common.Address
	NonceFloor uint64
	Deadline   uint64
}

// CancelDigest is the digest an owner signs to cancel intents.
func (s *Scheme) CancelDigest(c *CancelIntents) common.Hash {
	return eip712.New(cancelTypeHash).Address(c.Owner).Uint64(c.NonceFloor).Uint64(c.Deadline).Digest(s.separator)
}

// TypedData is an eth_signTypedData_v4 payload.
type TypedData struct {
	Types       map[string][]TypedField `json:"types"`
	PrimaryType string                  `json:"primaryType"`
	Domain      TypedDomain             `json:"domain"`
	Message     map[string]any          `json:"message"`
}

// TypedField is one member of an EIP-712 struct type.
type TypedField struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// TypedDomain is the domain as wallets expect it in JSON.
type TypedDomain struct {
	Name              string `json:"name"`
	Version           string `json:"version"`
	ChainID           uint64 `json:"chainId"`
	VerifyingContract string `json:"verifyingContract"`
}

var (
	domainFields   = []TypedField{{"name", "string"}, {"version", "string"}, {"chainId", "uint256"}, {"verifyingContract", "address"}}
	transferFields = []TypedField{{"collection", "string"}, {"assetId", "string"}, {"amount", "uint256"},
		{"from", "address"}, {"to", "address"}, {"nonce", "uint256"}, {"deadline", "uint256"}}
	tradeFields   = []TypedField{{"give", "Transfer"}, {"take", "Transfer"}}
	receiptFields = []TypedField{{"intent", "bytes32"}, {"sequence", "uint256"}, {"chain", "string"},
		{"index", "uint256"}, {"previous", "bytes32"}, {"time", "uint256"}}
	checkpointFields = []TypedField{{"chain", "string"}, {"first", "uint256"}, {"count", "uint256"},
		{"root", "bytes32"}, {"previous", "bytes32"}, {"time", "uint256"}}
	linkFields   = []TypedField{{"avatar", "string"}, {"wallet", "address"}, {"deadline", "uint256"}}
	cancelFields = []TypedField{{"owner", "address"}, {"nonceFloor", "uint256"}, {"deadline", "uint256"}}
)

func (s *Scheme) typed(primary string, fields []TypedField, message map[string]any, extra map[string][]TypedField) TypedData {
	types := map[string][]TypedField{"EIP712Domain": domainFields, primary: fields}
	for k, v := range extra {
		types[k] = v
	}
	return TypedData{
		Types:       types,
		PrimaryType: primary,
		Domain: TypedDomain{
			Name: s.domain.Name, Version: s.domain.Version, ChainID: s.domain.ChainID,
			VerifyingContract: s.domain.VerifyingContract.Hex(),
		},
		Message: message,
	}
}

func dec(v uint64) string { return strconv.FormatUint(v, 10) }

func transferMessage(t *Transfer) map[string]any {
	return map[string]any{
		"collection": t.Collection, "assetId": t.AssetID, "amount": dec(t.Amount),
		"from": t.From.Hex(), "to": t.To.Hex(), "nonce": dec(t.Nonce), "deadline": dec(t.Deadline),
	}
}

// TransferTypedData is what a wallet signs for t.
func (s *Scheme) TransferTypedData(t *Transfer) TypedData {
	return s.typed("Transfer", transferFields, transferMessage(t), nil)
}

// TradeTypedData is what both owners of a trade sign.
func (s *Scheme) TradeTypedData(t *Trade) TypedData {
	return s.typed("Trade", tradeFields, map[string]any{"give": transferMessage(&t.Give), "take": transferMessage(&t.Take)},
		map[string][]TypedField{"Transfer": transferFields})
}

// ReceiptTypedData is the realm's receipt as typed data.
func (s *Scheme) ReceiptTypedData(r *Receipt) TypedData {
	return s.typed("Receipt", receiptFields, map[string]any{
		"intent": r.Intent.Hex(), "sequence": dec(r.Sequence), "chain": r.Chain, "index": dec(r.Index),
		"previous": r.Previous.Hex(), "time": dec(r.Time),
	}, nil)
}

// CheckpointTypedData is a checkpoint as typed data.
func (s *Scheme) CheckpointTypedData(c *Checkpoint) TypedData {
	return s.typed("Checkpoint", checkpointFields, map[string]any{
		"chain": c.Chain, "first": dec(c.First), "count": dec(c.Count), "root": c.Root.Hex(),
		"previous": c.Previous.Hex(), "time": dec(c.Time),
	}, nil)
}

// LinkTypedData is what a wallet signs to link itself to an avatar.
func (s *Scheme) LinkTypedData(l *LinkWallet) TypedData {
	return s.typed("LinkWallet", linkFields, map[string]any{
		"avatar": l.Avatar, "wallet": l.Wallet.Hex(), "deadline": dec(l.Deadline),
	}, nil)
}

// CancelTypedData is what an owner signs to cancel intents.
func (s *Scheme) CancelTypedData(c *CancelIntents) TypedData {
	return s.typed("CancelIntents", cancelFields, map[string]any{
		"owner": c.Owner.Hex(), "nonceFloor": dec(c.NonceFloor), "deadline": dec(c.Deadline),
	}, nil)
}

// String names the domain for messages.
func (d Domain) String() string {
	return fmt.Sprintf("%s v%s chain %d contract %s", d.Name, d.Version, d.ChainID, d.VerifyingContract.Hex())
}
