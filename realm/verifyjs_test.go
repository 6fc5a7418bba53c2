package realm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/big"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/realm/web"
)

// The console's receipt verifier is the realm's promise that a receipt can
// be checked without the realm. The console verifies with the SDK's
// verifyReceipt, from the bundle it serves (web/vendor/zerorealm-sdk.js,
// built from clients/js), so these tests run that served bundle under
// Node against receipts, checkpoints and proofs of a real ledger, and
// against go-ethereum's keccak and secp256k1: what a person's browser runs
// is what is tested.

// verifyJSHarness reads a list of operations on standard input, runs each
// through the served SDK bundle and prints one result per operation: {"value": ...}
// or {"error": code}.
const verifyJSHarness = `
import * as v from "./vendor/zerorealm-sdk.js";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = [];
for (const op of JSON.parse(input)) {
  try {
    switch (op.op) {
    case "keccak": out.push({ value: v.bytesToHex(v.keccak256(v.hexToBytes(op.hex))) }); break;
    case "checksum": out.push({ value: v.checksumAddress(v.hexToBytes(op.hex, 20)) }); break;
    case "recover": out.push({ value: v.recoverAddress(op.digest, op.signature) }); break;
    case "hash": out.push({ value: v.hashTypedData(op.typed) }); break;
    case "verify": out.push({ value: v.verifyReceipt(op.receipt, op.opts) }); break;
    default: throw new Error("unknown op " + op.op);
    }
  } catch (e) {
    out.push({ error: e.code || String(e) });
  }
}
process.stdout.write(JSON.stringify(out));
`

type jsOp map[string]any

type jsResult struct {
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

// runVerifyJS runs ops through the embedded SDK bundle under Node. Node is
// present wherever the browser tests run; without it the tests skip, unless
// ZR_REQUIRE_BROWSER says they must run.
func runVerifyJS(t *testing.T, ops []jsOp) []jsResult {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("ZR_REQUIRE_BROWSER") != "" {
			t.Fatal("node not found and ZR_REQUIRE_BROWSER is set: install Node.js to run the console's receipt verifier")
		}
		t.Skip("node not found; set ZR_REQUIRE_BROWSER to make this a failure")
	}
	// The served tree as it is, with the vendored libraries the bundle
	// imports; package.json makes Node read its .js files as the ES
	// modules they are, as a browser does.
	dir := t.TempDir()
	if err := os.CopyFS(dir, webTree(t)); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"package.json": `{"type": "module"}`, "harness.js": verifyJSHarness} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	in, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "harness.js")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node harness.js: %v\n%s", err, stderr.String())
	}
	var res []jsResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(ops) {
		t.Fatalf("harness answered %d results for %d ops (%v): %.500s", len(res), len(ops), err, out)
	}
	return res
}

// webTree is the console's embedded files, rooted where they are served.
func webTree(t *testing.T) fs.FS {
	t.Helper()
	return web.Files
}

func (r jsResult) str(t *testing.T) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(r.Value, &s); err != nil {
		t.Fatalf("result %s (error %q) is not a string", r.Value, r.Error)
	}
	return s
}

func TestVerifyJSKeccak(t *testing.T) {
	// The two vectors everyone checks first: keccak-256, not SHA3-256
	// (whose "" is a7ffc6f8...).
	ops := []jsOp{{"op": "keccak", "hex": "0x"}, {"op": "keccak", "hex": "0x616263"}}
	want := []string{
		"0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
		"0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
	}
	// Every length across the first block boundaries (the rate is 136
	// bytes, the padding's two bytes meet at 135), then longer messages.
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int{}
	for n := 0; n <= 300; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 407, 408, 409, 1000, 4096)
	for _, n := range lengths {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		ops = append(ops, jsOp{"op": "keccak", "hex": hexOf(msg)})
		want = append(want, hexOf(crypto.Keccak256(msg)))
	}
	// EIP-55 addresses hash the lower-case hex text.
	for range 20 {
		var a common.Address
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		ops = append(ops, jsOp{"op": "checksum", "hex": hexOf(a[:])})
		want = append(want, a.Hex())
	}
	res := runVerifyJS(t, ops)
	for i, w := range want {
		if got := res[i].str(t); got != w {
			t.Errorf("the SDK bundle's %s(%.40v) = %s, want %s", ops[i]["op"], ops[i]["hex"], got, w)
		}
	}
}

func hexOf(b []byte) string { return "0x" + common.Bytes2Hex(b) }

// highS is the malleated twin of a valid signature: s' = n - s with the
// other recovery id. It recovers to the same key, and is refused.
func highS(t *testing.T, sig string) string {
	t.Helper()
	s, err := assets.ParseSignature(sig)
	if err != nil {
		t.Fatal(err)
	}
	n := crypto.S256().Params().N
	new(big.Int).Sub(n, new(big.Int).SetBytes(s[32:64])).FillBytes(s[32:64])
	s[64] = 55 - s[64]
	return hexOf(s[:])
}

func TestVerifyJSRecoversSecp256k1Signers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var ops []jsOp
	var want []string
	for range 16 {
		key, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		var d common.Hash
		for i := range d {
			d[i] = byte(rng.Uint32())
		}
		sig, err := assets.Sign(d, key)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, jsOp{"op": "recover", "digest": d.Hex(), "signature": sig.String()})
		want = append(want, crypto.PubkeyToAddress(key.PublicKey).Hex())
	}
	res := runVerifyJS(t, ops)
	for i, w := range want {
		if res[i].Error != "" || res[i].str(t) != w {
			t.Errorf("recover(%s) = %s %s, want %s", ops[i]["signature"], res[i].Value, res[i].Error, w)
		}
	}

	// Refusals, each with its code.
	d := common.HexToHash("0x01")
	key, _ := crypto.GenerateKey()
	sig, _ := assets.Sign(d, key)
	good := sig.String()
	v29 := good[:len(good)-2] + "1d"
	v0 := good[:len(good)-2] + "00"
	zeroR := "0x" + strings.Repeat("0", 64) + good[66:]
	bad := []struct {
		name, sig, code string
	}{
		{"high s", highS(t, good), "signature-high-s"},
		{"v 29", v29, "signature-encoding"},
		{"v 0", v0, "signature-encoding"},
		{"r zero", zeroR, "signature-encoding"},
		{"short", good[:len(good)-2], "signature-encoding"},
		{"not hex", "0x" + strings.Repeat("zz", 65), "signature-encoding"},
	}
	ops = ops[:0]
	for _, b := range bad {
		ops = append(ops, jsOp{"op": "recover", "digest": d.Hex(), "signature": b.sig})
	}
	res = runVerifyJS(t, ops)
	for i, b := range bad {
		if res[i].Error != b.code {
			t.Errorf("recover with %s = %s %q, want error %s", b.name, res[i].Value, res[i].Error, b.code)
		}
	}
}

type jsVerdict struct {
	OK     bool   `json:"ok"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
	Signer string `json:"signer"`
	Digest string `json:"digest"`
	Checks []struct {
		Check  string `json:"check"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"checks"`
}

// clone deep-copies a JSON document for tampering.
func clone(t *testing.T, v any) map[string]any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// typedDigest hashes typed data with go-ethereum's apitypes, which the
// tamperers use to forge a self-consistent document.
func typedDigest(t *testing.T, td any) common.Hash {
	t.Helper()
	raw, _ := json.Marshal(td)
	var typed apitypes.TypedData
	if err := json.Unmarshal(raw, &typed); err != nil {
		t.Fatal(err)
	}
	h, _, err := apitypes.TypedDataAndHash(typed)
	if err != nil {
		t.Fatal(err)
	}
	return common.BytesToHash(h)
}

func TestVerifyJSReceiptsOfARealLedger(t *testing.T) {
	const perCheckpoint = 5 // an odd size: the tree's right edge is short
	r := startRealm(t, Config{Listen: "localhost:0", ScenesDir: marketScenes,
		Assets: AssetsConfig{CheckpointEvery: perCheckpoint, CheckpointInterval: time.Hour}})
	ada := newMarketUser(t, r, "ada")
	bob := newMarketUser(t, r, "bob")
	mint(t, r, "gems", "", ada.Wallet, 1000)
	mint(t, r, "relics", "vase", ada.Wallet, 0)

	// Two checkpoints' worth of transfers, a unique item among them.
	var digests []string
	for i := range 2 * perCheckpoint {
		in := intent("gems", "", uint64(i+1), ada.Wallet, bob.Wallet, uint64(i+1), deadlineIn(time.Hour))
		if i == 2 {
			in = intent("relics", "vase", 1, ada.Wallet, bob.Wallet, uint64(i+1), deadlineIn(time.Hour))
		}
		var tr transferReply
		ada.C.Must("POST", "/v1/assets/transfers", ada.SignedTransfer(t, in, ada.Key), &tr)
		digests = append(digests, tr.Digest)
	}
	var dom struct {
		Domain map[string]any `json:"domain"`
		Signer string         `json:"signer"`
	}
	ada.C.Must("GET", "/v1/assets/domain", nil, &dom)

	// The documents exactly as the API serves them.
	proofs := make([]map[string]any, len(digests))
	for i, d := range digests {
		eventually(t, "receipt "+d+" checkpointed", func() bool {
			code, _ := ada.C.Call("GET", "/v1/receipts/"+d+"/proof", nil, &proofs[i])
			return code == http.StatusOK
		})
	}
	var plain map[string]any
	ada.C.Must("GET", "/v1/receipts/"+digests[0], nil, &plain)
	var cps struct {
		Checkpoints []map[string]any `json:"checkpoints"`
	}
	ada.C.Must("GET", "/v1/checkpoints", nil, &cps)
	if len(cps.Checkpoints) < 2 {
		t.Fatalf("%d checkpoints after %d receipts, want 2", len(cps.Checkpoints), len(digests))
	}
	checkpointOf := func(proof map[string]any) map[string]any {
		want := proof["proof"].(map[string]any)["checkpoint_digest"]
		for _, c := range cps.Checkpoints {
			if c["digest"] == want {
				return c
			}
		}
		t.Fatalf("no published checkpoint %v", want)
		return nil
	}
	trusted := []string{dom.Signer}
	opts := func(extra map[string]any) map[string]any {
		o := map[string]any{"domain": dom.Domain, "signers": trusted}
		for k, v := range extra {
			o[k] = v
		}
		return o
	}

	type vcase struct {
		name    string
		receipt any
		opts    map[string]any
		code    string // "" : must pass
	}
	var cases []vcase
	for i, p := range proofs {
		cases = append(cases, vcase{name: fmt.Sprintf("receipt %d with its proof", i), receipt: p,
			opts: opts(map[string]any{"checkpoint": checkpointOf(p), "intent": digests[i]})})
	}
	cases = append(cases,
		vcase{name: "receipt without proof", receipt: plain, opts: opts(nil)},
		vcase{name: "no trusted signers", receipt: plain, opts: map[string]any{"domain": dom.Domain, "signers": []string{}}, code: "no-signers"},
		vcase{name: "another intent", receipt: plain, opts: opts(map[string]any{"intent": digests[1]}), code: "wrong-intent"},
		vcase{name: "no domain to check against", receipt: plain, opts: map[string]any{"signers": trusted}, code: "no-domain"},
		vcase{name: "not a document", receipt: "receipt", opts: opts(nil), code: "malformed"},
		vcase{name: "typed data without a message", receipt: map[string]any{"receipt": map[string]any{"types": map[string]any{}}, "signature": "0x"}, opts: opts(nil), code: "malformed"},
	)

	// Signers trusted for a period only: what a key signed outside it does
	// not verify, whatever else holds; a plain address trusts it always.
	signedAt, err := strconv.ParseInt(plain["receipt"].(map[string]any)["message"].(map[string]any)["time"].(string), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) string { return time.Unix(signedAt, 0).Add(d).UTC().Format(time.RFC3339) }
	period := func(since, until string) map[string]any {
		p := map[string]any{"address": dom.Signer, "since": since}
		if until != "" {
			p["until"] = until
		}
		return p
	}
	withSigners := func(signers ...any) map[string]any {
		return map[string]any{"domain": dom.Domain, "signers": signers}
	}
	cases = append(cases,
		vcase{name: "signer trusted since before it signed", receipt: plain, opts: withSigners(period(at(-time.Hour), ""))},
		vcase{name: "signer trusted for a period that holds the receipt and its checkpoint", receipt: proofs[0],
			opts: withSigners(period(at(-time.Hour), at(time.Hour)))},
		vcase{name: "signer trusted only from after it signed", receipt: plain, opts: withSigners(period(at(time.Hour), "")), code: "outside-period"},
		vcase{name: "signer retired before it signed", receipt: plain, opts: withSigners(period(at(-2*time.Hour), at(-time.Hour))), code: "outside-period"},
		vcase{name: "a plain address trusts the key at any time", receipt: plain, opts: withSigners(dom.Signer, period(at(time.Hour), ""))},
		vcase{name: "a period that does not parse trusts nothing", receipt: plain, opts: withSigners(period("yesterday", "")), code: "no-signers"},
	)

	// A changed field: the document's digest no longer matches, and with
	// the digest recomputed the signature recovers to someone else.
	changed := clone(t, plain)
	changed["receipt"].(map[string]any)["message"].(map[string]any)["sequence"] = "999"
	cases = append(cases, vcase{name: "changed sequence", receipt: changed, opts: opts(nil), code: "digest-mismatch"})
	redigested := clone(t, changed)
	redigested["digest"] = typedDigest(t, redigested["receipt"]).Hex()
	cases = append(cases, vcase{name: "changed sequence, digest recomputed", receipt: redigested, opts: opts(nil), code: "wrong-signer"})
	// Every signed field, changed in a self-consistent forgery, breaks the
	// signature; every domain field is checked against the realm's.
	msg := plain["receipt"].(map[string]any)["message"].(map[string]any)
	for field, v := range msg {
		forged := clone(t, plain)
		m := forged["receipt"].(map[string]any)["message"].(map[string]any)
		switch s := v.(string); {
		case strings.HasPrefix(s, "0x"):
			m[field] = common.HexToHash("0x5eed").Hex()
		case field == "chain":
			m[field] = s + "-other"
		default:
			m[field] = s + "1"
		}
		forged["digest"] = typedDigest(t, forged["receipt"]).Hex()
		cases = append(cases, vcase{name: "forged " + field, receipt: forged, opts: opts(nil), code: "wrong-signer"})
	}
	for field, v := range map[string]any{"name": "ZeroRealm2", "version": "2", "chainId": 1, "verifyingContract": common.HexToAddress("0x1").Hex()} {
		forged := clone(t, plain)
		forged["receipt"].(map[string]any)["domain"].(map[string]any)[field] = v
		cases = append(cases, vcase{name: "domain " + field + " changed", receipt: forged, opts: opts(nil), code: "wrong-domain"})
	}
	extra := clone(t, plain)
	extra["receipt"].(map[string]any)["message"].(map[string]any)["amount"] = "1000000"
	cases = append(cases, vcase{name: "unsigned extra field", receipt: extra, opts: opts(nil), code: "wrong-type"})
	renamed := clone(t, plain)
	renamed["receipt"].(map[string]any)["types"].(map[string]any)["Receipt"].([]any)[1].(map[string]any)["name"] = "seq"
	cases = append(cases, vcase{name: "renamed type field", receipt: renamed, opts: opts(nil), code: "wrong-type"})

	// Signed, but by a key the holder does not trust.
	mallory, _ := crypto.GenerateKey()
	forged := clone(t, plain)
	fsig, _ := assets.Sign(common.HexToHash(plain["digest"].(string)), mallory)
	forged["signature"] = fsig.String()
	forged["signer"] = crypto.PubkeyToAddress(mallory.PublicKey).Hex()
	cases = append(cases, vcase{name: "signed by another key", receipt: forged, opts: opts(nil), code: "wrong-signer"})
	lying := clone(t, forged)
	lying["signer"] = dom.Signer
	cases = append(cases, vcase{name: "signed by another key, naming the realm", receipt: lying, opts: opts(nil), code: "wrong-signer"})
	cases = append(cases, vcase{name: "genuine, realm key not trusted", receipt: plain,
		opts: map[string]any{"domain": dom.Domain, "signers": []string{crypto.PubkeyToAddress(mallory.PublicKey).Hex()}}, code: "wrong-signer"})

	malleated := clone(t, plain)
	malleated["signature"] = highS(t, plain["signature"].(string))
	cases = append(cases, vcase{name: "high-s twin of the realm's signature", receipt: malleated, opts: opts(nil), code: "signature-high-s"})

	otherDomain := clone(t, dom.Domain)
	otherDomain["chainId"] = 1
	cases = append(cases, vcase{name: "expected on another chain", receipt: plain,
		opts: map[string]any{"domain": otherDomain, "signers": trusted}, code: "wrong-domain"})

	// Proofs that do not hold.
	withProof := func(mut func(p map[string]any)) map[string]any {
		doc := clone(t, proofs[0])
		mut(doc["proof"].(map[string]any))
		return doc
	}
	cases = append(cases,
		vcase{name: "altered path", receipt: withProof(func(p map[string]any) {
			path := p["path"].([]any)
			path[0] = common.HexToHash("0xbad").Hex()
		}), opts: opts(nil), code: "bad-proof"},
		vcase{name: "other leaf index", receipt: withProof(func(p map[string]any) { p["leaf_index"] = 1 }), opts: opts(nil), code: "bad-proof"},
		vcase{name: "another receipt's proof", receipt: plain, opts: opts(map[string]any{"proof": proofs[1]["proof"]}), code: "bad-proof"},
		vcase{name: "forged checkpoint root", receipt: withProof(func(p map[string]any) {
			p["checkpoint"].(map[string]any)["message"].(map[string]any)["root"] = common.HexToHash("0xbad").Hex()
		}), opts: opts(nil), code: "bad-checkpoint"},
		vcase{name: "proof against another published checkpoint", receipt: proofs[0],
			opts: opts(map[string]any{"checkpoint": checkpointOf(proofs[perCheckpoint])}), code: "checkpoint-mismatch"},
	)

	ops := make([]jsOp, len(cases))
	for i, c := range cases {
		ops[i] = jsOp{"op": "verify", "receipt": c.receipt, "opts": c.opts}
	}
	res := runVerifyJS(t, ops)
	for i, c := range cases {
		var v jsVerdict
		if err := json.Unmarshal(res[i].Value, &v); err != nil {
			t.Fatalf("%s: verdict %s (error %q): %v", c.name, res[i].Value, res[i].Error, err)
		}
		switch {
		case c.code == "" && (!v.OK || v.Code != ""):
			t.Errorf("%s: refused (%s), want verified", c.name, v.Reason)
		case c.code != "" && (v.OK || v.Code != c.code):
			t.Errorf("%s: ok=%v code %q (%s), want refused with %s", c.name, v.OK, v.Code, v.Reason, c.code)
		case c.code == "" && !strings.EqualFold(v.Signer, dom.Signer):
			t.Errorf("%s: signer %s, want %s", c.name, v.Signer, dom.Signer)
		}
	}
	// A verified proof reports every check it made.
	var first jsVerdict
	_ = json.Unmarshal(res[0].Value, &first)
	var names []string
	for _, c := range first.Checks {
		names = append(names, c.Check)
	}
	if got, want := strings.Join(names, ","), "type,domain,digest,signature,signer,intent,checkpoint,published-checkpoint,inclusion"; got != want {
		t.Errorf("checks of a verified proof = %s, want %s", got, want)
	}

	// The same EIP-712 hashing on other types: the intents the realm asks
	// wallets to sign.
	var p payloadAnswer
	ada.C.Must("POST", "/v1/assets/intents/transfer", map[string]any{"intent": intent("gems", "", 7, ada.Wallet, bob.Wallet, 77, deadlineIn(time.Hour))}, &p)
	var td any
	_ = json.Unmarshal(p.TypedData, &td)
	hres := runVerifyJS(t, []jsOp{{"op": "hash", "typed": td}})
	if got := hres[0].str(t); got != p.Digest {
		t.Errorf("the SDK bundle's hash of a Transfer = %s, realm and apitypes say %s", got, p.Digest)
	}
}

// TestVendoredFilesMatchTheirRecordedHashes: every library module the
// console serves is the one web/vendor/README.md records, and every
// recorded module is served (the embed pattern must name the "_" files).
func TestVendoredFilesMatchTheirRecordedHashes(t *testing.T) {
	readme, err := fs.ReadFile(webTree(t), "vendor/README.md")
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]string{}
	row := regexp.MustCompile("(?m)^\\| `([^`]+\\.js)` \\| `([0-9a-f]{64})` \\|$")
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		recorded[m[1]] = m[2]
	}
	if len(recorded) == 0 {
		t.Fatal("vendor/README.md records no file hashes")
	}
	vendor, err := fs.Sub(webTree(t), "vendor")
	if err != nil {
		t.Fatal(err)
	}
	served := 0
	err = fs.WalkDir(vendor, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, ".js") {
			return err
		}
		served++
		data, err := fs.ReadFile(vendor, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		if got, want := hex.EncodeToString(sum[:]), recorded[name]; got != want {
			t.Errorf("vendor/%s has SHA-256 %s, README.md records %q", name, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if served != len(recorded) {
		t.Errorf("%d vendored modules are served, README.md records %d", served, len(recorded))
	}
}
