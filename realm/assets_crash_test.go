package realm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/scenes"
)

// Environment of the child realm TestAssetCrash kills.
const (
	assetCrashDirEnv    = "ZR_ASSET_CRASH_DIR"
	assetCrashWalletEnv = "ZR_ASSET_CRASH_WALLET"
	assetCrashNode      = "crash-node"
	assetCrashItems     = 1500
	assetCrashKillAfter = 200 // receipts before the parent kills the child
)

// TestAssetCrash kills a realm with SIGKILL during a stream of transfers and
// checks, after a restart on the same data directory, that every transfer
// that received a receipt is in the ledger at the receipt's sequence, that
// the node's receipt chain has no missing link, and that every such
// transfer's authorization is in the node's audit chain, which verifies.
func TestAssetCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	key, _ := crypto.GenerateKey()
	wallet := crypto.PubkeyToAddress(key.PublicKey)
	cmd := exec.Command(os.Args[0], "-test.run=^TestAssetCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), assetCrashDirEnv+"="+dir, assetCrashWalletEnv+"="+wallet.Hex())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	url := ""
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "URL "); ok {
			url = u
			break
		}
	}
	if url == "" {
		t.Fatal("child realm did not report its URL")
	}
	go func() {
		for sc.Scan() {
		}
	}()

	c := &apiClient{T: t, Base: url, Origin: url, HTTP: &http.Client{Timeout: 10 * time.Second}}
	u := &marketUser{Auth: webauthntest.New(), Key: key, Wallet: wallet}
	u.Sess = c.Register(u.Auth, "crash")
	u.C = c.With(u.Sess.Token)
	var p payloadAnswer
	u.C.Must("POST", "/v1/assets/wallet/link/payload", map[string]string{"wallet": wallet.Hex()}, &p)
	var linkMsg struct {
		Message map[string]any `json:"message"`
	}
	_ = json.Unmarshal(p.TypedData, &linkMsg)
	u.C.Must("POST", "/v1/assets/wallet/link", map[string]any{"wallet": wallet.Hex(), "deadline": linkMsg.Message["deadline"], "signature": signPayload(t, p.TypedData, p.Digest, key)}, nil)

	// Sign locally (as a wallet would) so the stream is fast enough to be
	// cut in the middle.
	scheme := assets.NewScheme(assets.Domain{})
	deadline := uint64(time.Now().Add(time.Hour).Unix())
	var mu sync.Mutex
	var got []transferReply
	var gotItems []string // the item of each of got
	var killOnce sync.Once
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 5 * time.Second}
			for i := range next {
				tr := assets.Transfer{Collection: "relics", AssetID: fmt.Sprintf("c-%d", i), Amount: 1, From: wallet,
					To: common.BigToAddress(big.NewInt(int64(i + 1))), Nonce: uint64(i), Deadline: deadline}
				sig, _ := assets.Sign(scheme.TransferDigest(&tr), key)
				body := map[string]any{"intent": assets.MessageOf(&tr), "signature": sig.String()}
				var reply transferReply
				if postJSON(hc, url+"/v1/assets/transfers", u.Sess.Token, body, &reply) != http.StatusCreated {
					continue
				}
				mu.Lock()
				got = append(got, reply)
				gotItems = append(gotItems, tr.AssetID)
				n := len(got)
				mu.Unlock()
				if n >= assetCrashKillAfter {
					killOnce.Do(func() { _ = cmd.Process.Kill() })
				}
			}
		}()
	}
	for i := range assetCrashItems {
		next <- i
	}
	close(next)
	wg.Wait()
	_ = cmd.Wait()
	if len(got) < assetCrashKillAfter || len(got) == assetCrashItems {
		t.Fatalf("%d transfers received a receipt; the child was not killed mid-stream", len(got))
	}
	t.Logf("child killed after %d receipts", len(got))

	r := startRealm(t, Config{Listen: "localhost:0", DataDir: dir, Node: assetCrashNode, ScenesDir: marketScenes})
	l := r.market.Ledger()
	for _, rep := range got {
		intent := common.HexToHash(rep.Receipt.Receipt.Message["intent"].(string))
		var seq uint64
		fmt.Sscan(rep.Receipt.Receipt.Message["sequence"].(string), &seq)
		found := false
		for _, c := range l.Collections() {
			if c.ID != "relics" {
				continue
			}
			items, _ := l.AssetsIn("relics", "", 100000)
			for _, it := range items {
				a, _ := l.Asset("relics", it.Item)
				for _, e := range a.History {
					if e.Seq == seq && e.Digest == intent {
						found = true
					}
				}
			}
		}
		if !found {
			t.Fatalf("receipted transfer %s at sequence %d is not in the ledger after the restart", intent.Hex(), seq)
		}
	}
	chain := l.Receipts(assetCrashNode, 0, 1<<30)
	if i, err := assets.VerifyChain(chain, func(a common.Address) bool { return a == l.Signer() }); i != -1 {
		t.Fatalf("receipt chain broken at %d: %v", i, err)
	}
	for _, rep := range got {
		var idx uint64
		fmt.Sscan(rep.Receipt.Receipt.Message["index"].(string), &idx)
		if idx >= uint64(len(chain)) || chain[idx].Digest.Hex() != rep.Receipt.Digest {
			t.Fatalf("receipt %d (%s) the client holds is not link %d of the chain (%d links)", idx, rep.Receipt.Digest, idx, len(chain))
		}
	}
	// Transfers applied but not receipted before the kill got their
	// receipts at the restart.
	items, _ := l.AssetsIn("relics", "", 100000)
	for _, it := range items {
		a, _ := l.Asset("relics", it.Item)
		for _, e := range a.History {
			if e.Event == "transfer" {
				if _, err := l.ReceiptFor(e.Digest); err != nil {
					t.Fatalf("transfer %s at %d has no receipt after the restart: %v", e.Digest.Hex(), e.Seq, err)
				}
			}
		}
	}
	t.Logf("after restart: %d receipts in the chain, every one linked", len(chain))

	// Resubmitting an intent whose answer the kill cut off answers 200
	// with its receipt, not not-owner or nonce-used; one that was
	// answered gets the same receipt again.
	answered := map[string]bool{}
	for _, item := range gotItems {
		answered[item] = true
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	resubmit := func(i int) (int, []byte) {
		tr := assets.Transfer{Collection: "relics", AssetID: fmt.Sprintf("c-%d", i), Amount: 1, From: wallet,
			To: common.BigToAddress(big.NewInt(int64(i + 1))), Nonce: uint64(i), Deadline: deadline}
		sig, _ := assets.Sign(scheme.TransferDigest(&tr), key)
		data, _ := json.Marshal(map[string]any{"intent": assets.MessageOf(&tr), "signature": sig.String()})
		req, _ := http.NewRequest("POST", r.URL()+"/v1/assets/transfers", bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+u.Sess.Token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	cutOff, again := 0, 0
	for _, it := range items {
		a, _ := l.Asset("relics", it.Item)
		var i int
		if _, err := fmt.Sscanf(it.Item, "c-%d", &i); err != nil || len(a.History) < 2 {
			continue
		}
		if answered[it.Item] {
			if again == 3 {
				continue
			}
			again++
		}
		status, body := resubmit(i)
		var reply transferReply
		if status != http.StatusOK || json.Unmarshal(body, &reply) != nil || reply.Digest != a.History[len(a.History)-1].Digest.Hex() {
			t.Fatalf("resubmitted transfer of %s (answered before the kill: %v) = %d %s; want 200 with its receipt", it.Item, answered[it.Item], status, body)
		}
		if !answered[it.Item] {
			cutOff++
		}
	}
	t.Logf("%d transfers applied without an answer before the kill answered 200 with their receipts when sent again", cutOff)

	// The audit chain survived the kill intact, and holds the allowed
	// TransferAsset decision of every transfer that got a receipt: the
	// realm stores a decision before acting on it.
	ctx := context.Background()
	if rep, err := audit.Verify(ctx, r.store, assetCrashNode); err != nil || !rep.OK() {
		t.Fatalf("audit chain after the restart = %+v, %v; want intact", rep, err)
	}
	stream, err := r.store.Stream(ctx, audit.StreamConfig)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLast(ctx, audit.Subject(assetCrashNode))
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for seq := uint64(1); seq <= last.Seq; seq++ {
		m, err := stream.Get(ctx, seq)
		if err != nil || m.Subject != audit.Subject(assetCrashNode) {
			continue
		}
		for line := range bytes.SplitSeq(m.Data, []byte{'\n'}) {
			var ev audit.Event
			if json.Unmarshal(line, &ev) == nil && ev.Action == "TransferAsset" && ev.Outcome == audit.Allow {
				allowed[ev.Resource] = true
			}
		}
	}
	for _, item := range gotItems {
		if res := scenes.AssetUID("relics", item).String(); !allowed[res] {
			t.Fatalf("transfer of %s got a receipt but its authorization is not in the audit chain", res)
		}
	}
}

// postJSON is a POST that reports a dead server as status 0 instead of
// failing the test: the server is killed on purpose.
func postJSON(hc *http.Client, url, token string, body, out any) int {
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(out) != nil {
		return -resp.StatusCode
	}
	return resp.StatusCode
}

// TestAssetCrashChild is the realm TestAssetCrash kills; it does nothing
// unless started by it.
func TestAssetCrashChild(t *testing.T) {
	dir := os.Getenv(assetCrashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestAssetCrash")
	}
	r := startRealm(t, Config{Listen: "localhost:0", DataDir: dir, Node: assetCrashNode, ScenesDir: marketScenes})
	wallet := common.HexToAddress(os.Getenv(assetCrashWalletEnv))
	for i := range assetCrashItems {
		mint(t, r, "relics", fmt.Sprintf("c-%d", i), wallet, 0)
	}
	fmt.Println("URL " + r.URL())
	select {}
}
