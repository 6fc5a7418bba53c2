package chaos

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/clients/market"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// Kinds of recorded requests.
const (
	KindItem    = "transfer-item"    // a unique item to another wallet
	KindCredits = "transfer-credits" // fungible credits to another wallet
	KindSignIn  = "sign-in"          // a passkey sign-in, begin to finish
	KindPayload = "intent-payload"   // the typed data of an intent, before signing
	KindCommand = "twin-command"     // a command to one of the twin's valves
	KindDigest  = "command-digest"   // a command's hash, asked before it is sent
)

// The collections the workload moves, from the built-in foundry scene.
const (
	itemCollection   = "relics"
	creditCollection = "credits"
	// creditsPerWallet are minted to every worker's wallet at the start:
	// enough that no wallet runs dry in a run.
	creditsPerWallet = 1_000_000
	// sceneCredits is the exchange scene's own supply (testdata).
	sceneCredits = 1_000_000
)

// Op is one request the workload made and what came back.
type Op struct {
	Worker int
	Node   int // index of the realm node asked
	Kind   string
	// Item is the unique item moved (KindItem); Amount the credits moved.
	Item     string
	Amount   uint64
	From, To string
	// Digest is the intent's EIP-712 digest, also its Idempotency-Key: a
	// retry of an unanswered intent sends the same one. For a twin command
	// it is the command's hash (what the gateway's grant carries), and Key
	// its Idempotency-Key, Actuator the valve and Value what it was set to.
	Digest     string
	Key        string
	Actuator   string
	Value      float64
	Start, End time.Time
	// Status is the HTTP status, 0 when no answer came (the node was
	// down, or the client gave up).
	Status int
	// Type is the problem type's slug on an error answer; Reason a
	// transfer refusal's reason, or the gateway's for a command it
	// refused. Result is a command's status in a 2xx answer (done,
	// refused, failed).
	Type, Reason string
	Result       string
	Err          string
	// RequestID identifies an error answer in the node's log.
	RequestID string
	// Abandoned: the workload stopped waiting for the answer as it
	// stopped; its outcome is unknown and no answer is judged.
	Abandoned bool
}

// Wait is how long the request took.
func (o Op) Wait() time.Duration { return o.End.Sub(o.Start) }

// Outcome classes of an answer.
const (
	Applied = iota // 2xx
	Refused        // a definite refusal: nothing was applied
	Unknown        // no answer, or one that cannot tell (503, 507)
)

// Outcome classifies the answer.
func (o Op) Outcome() int {
	switch {
	case o.Status >= 200 && o.Status < 300 && o.Kind == KindCommand && o.Result != "done":
		// The gateway refused the grant, or its driver failed: nothing
		// moved, and the answer is final.
		return Refused
	case o.Status >= 200 && o.Status < 300:
		return Applied
	case o.Type == "idempotency-key-in-progress":
		// The first request with the key has no answer yet: it may
		// still take effect, and the retry waits for its answer.
		return Unknown
	case o.Type == "receipt-pending":
		// Applied, without its receipt yet: the workload asks again
		// for the receipt, and the checker holds the intent to it.
		return Unknown
	case o.Status >= 400 && o.Status < 500 && o.Status != http.StatusTooManyRequests && o.Status != 499:
		return Refused
	default:
		return Unknown
	}
}

// Recorder keeps the history; safe for concurrent use.
type Recorder struct {
	mu  sync.Mutex
	ops []Op
}

func (r *Recorder) add(o Op) {
	r.mu.Lock()
	r.ops = append(r.ops, o)
	r.mu.Unlock()
}

// Ops is a copy of the history so far.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Workload is a set of avatars, each with a passkey and a wallet, moving
// items and credits between their wallets through every realm node.
type Workload struct {
	nodes   []string
	admin   *market.Client
	workers []*worker
	rec     *Recorder
	// Items maps every item to the wallet it was minted to.
	Items map[string]string
	// Wallets are the workers' addresses, in worker order.
	Wallets []string
	// CreditsMinted is what the workload minted on top of the scene's own
	// supply.
	CreditsMinted uint64
	// transfers keeps every distinct intent sent, by digest.
	mu        sync.Mutex
	intents   map[string]Op
	owners    map[string]int // item -> worker that may move it now; -1 while unresolved
	rng       *rand.Rand
	signInGap time.Duration
	// commands keeps every distinct twin command sent, by hash; operators
	// says whether each worker also runs an operator of the twin.
	commands  map[string]Op
	operators bool
}

type worker struct {
	id     int
	w      *Workload
	auth   *webauthntest.Authenticator
	name   string
	key    *ecdsa.PrivateKey
	wallet string
	nonce  uint64
	// token is the worker's session, shared with its operator.
	tokenMu sync.Mutex
	token   string
}

// httpTimeout is how long the workload waits for any answer: well past
// the deadline the checker allows, so that a wait past it is seen.
const httpTimeout = RequestTimeout + 5*time.Second

// originTransport sets the Origin header the realm checks on passkey
// ceremonies.
type originTransport struct{ origin string }

func (t originTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if req.Header.Get("Origin") == "" {
		req.Header.Set("Origin", t.origin)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// NewWorkload signs up an administrator and workers avatars on the first
// node, links a wallet to each, and mints itemsPer items and the credits
// to every wallet.
// With operators, each worker also commands a valve of the twin, its own.
func NewWorkload(ctx context.Context, nodes []string, workers, itemsPer int, operators bool, rec *Recorder) (*Workload, error) {
	if operators && workers > valves {
		return nil, fmt.Errorf("chaos: %d operators, the twin has %d valves", workers, valves)
	}
	w := &Workload{nodes: nodes, rec: rec, Items: map[string]string{}, intents: map[string]Op{}, owners: map[string]int{},
		rng: rand.New(rand.NewPCG(1, 2)), signInGap: 3 * time.Second, commands: map[string]Op{}, operators: operators}
	adminToken, _, err := signUp(ctx, nodes[0], "keeper", webauthntest.New())
	if err != nil {
		return nil, fmt.Errorf("chaos: sign up the administrator: %w", err)
	}
	w.admin = client(nodes[0], adminToken)
	for i := range workers {
		wk := &worker{id: i, w: w, auth: webauthntest.New(), name: fmt.Sprintf("worker%d", i)}
		if wk.token, _, err = signUp(ctx, nodes[0], wk.name, wk.auth); err != nil {
			return nil, fmt.Errorf("chaos: sign up %s: %w", wk.name, err)
		}
		if wk.key, err = crypto.GenerateKey(); err != nil {
			return nil, err
		}
		wk.wallet = crypto.PubkeyToAddress(wk.key.PublicKey).Hex()
		if err := client(nodes[0], wk.token).LinkWallet(ctx, market.KeySigner(wk.key)); err != nil {
			return nil, fmt.Errorf("chaos: link %s's wallet: %w", wk.name, err)
		}
		for j := range itemsPer {
			item := fmt.Sprintf("chaos-%d-%d", i, j)
			if _, err := w.admin.Mint(ctx, itemCollection, item, wk.wallet, ""); err != nil {
				return nil, fmt.Errorf("chaos: mint %s: %w", item, err)
			}
			w.Items[item] = wk.wallet
			w.owners[item] = i
		}
		if _, err := w.admin.Mint(ctx, creditCollection, "", wk.wallet, strconv.Itoa(creditsPerWallet)); err != nil {
			return nil, fmt.Errorf("chaos: mint credits: %w", err)
		}
		w.CreditsMinted += creditsPerWallet
		w.workers = append(w.workers, wk)
		w.Wallets = append(w.Wallets, wk.wallet)
	}
	return w, nil
}

func client(node, token string) *market.Client {
	c := market.New(node, token)
	c.HTTP = &http.Client{Timeout: httpTimeout, Transport: originTransport{origin: node}}
	return c
}

// Run runs every worker until ctx ends, and then lets each finish the
// intent it holds (retrying an unanswered one until it has an answer)
// within settle.
func (w *Workload) Run(ctx context.Context, settle time.Duration) {
	settleCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		time.AfterFunc(settle, cancel)
	})
	defer stop()
	var wg sync.WaitGroup
	for _, wk := range w.workers {
		wg.Go(func() { wk.run(ctx, settleCtx) })
		if w.operators {
			wg.Go(func() { wk.operate(ctx, settleCtx) })
		}
	}
	wg.Wait()
}

// run picks an action at a time: mostly transfers, now and then a sign-in.
func (wk *worker) run(ctx, settle context.Context) {
	lastSignIn := time.Now()
	for ctx.Err() == nil {
		if time.Since(lastSignIn) > wk.w.signInGap {
			wk.signIn(ctx)
			lastSignIn = time.Now()
			continue
		}
		to := wk.w.peer(wk.id)
		if item, ok := wk.w.takeItem(wk.id); ok && wk.w.coin() {
			wk.transfer(ctx, settle, market.Transfer{Collection: itemCollection, AssetID: item, Amount: "1", To: to.wallet}, to.id)
		} else {
			if ok {
				wk.w.giveItem(item, wk.id)
			}
			wk.transfer(ctx, settle, market.Transfer{Collection: creditCollection, Amount: strconv.Itoa(1 + wk.w.intn(9)), To: to.wallet}, to.id)
		}
	}
}

func (w *Workload) coin() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rng.IntN(2) == 0
}

func (w *Workload) intn(n int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rng.IntN(n)
}

func (w *Workload) peer(self int) *worker {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if p := w.workers[w.rng.IntN(len(w.workers))]; p.id != self || len(w.workers) == 1 {
			return p
		}
	}
}

// takeItem hands worker one of the items it owns, marking it in flight.
func (w *Workload) takeItem(worker int) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for item, owner := range w.owners {
		if owner == worker {
			w.owners[item] = -1
			return item, true
		}
	}
	return "", false
}

func (w *Workload) giveItem(item string, worker int) {
	w.mu.Lock()
	w.owners[item] = worker
	w.mu.Unlock()
}

// node picks the realm node for a request: attempt by attempt, each
// worker goes round the nodes, so a retry goes to another node.
func (wk *worker) node(attempt int) int {
	return (wk.id + attempt) % len(wk.w.nodes)
}

// transfer signs t from the worker's wallet and sends it until it has a
// definite answer (applied or refused), or settle ends. An item goes to
// its receiver when applied, back to the worker when refused, and stays
// unresolved (moved by no one) otherwise.
func (wk *worker) transfer(ctx, settle context.Context, t market.Transfer, receiver int) {
	t.From = wk.wallet
	t.Nonce = strconv.FormatUint(wk.nonce, 10)
	// Every intent gets a nonce of its own, used or not: nonces are a set
	// per owner, not a sequence.
	wk.nonce++
	t.Deadline = strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	op := Op{Worker: wk.id, Kind: KindCredits, From: t.From, To: t.To}
	if t.AssetID != "" {
		op.Kind, op.Item = KindItem, t.AssetID
	} else {
		op.Amount, _ = strconv.ParseUint(t.Amount, 10, 64)
	}
	var req market.TransferRequest
	var digest string
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			// Nothing was sent: the item stays where it is.
			if op.Item != "" {
				wk.w.giveItem(op.Item, wk.id)
			}
			return
		}
		c := wk.client(wk.node(attempt))
		p := Op{Worker: wk.id, Node: wk.node(attempt), Kind: KindPayload, Start: time.Now()}
		payload, err := c.TransferPayload(ctx, t)
		wk.w.record(p, err)
		if err != nil {
			backoff(ctx, err)
			continue
		}
		sig, err := market.SignPayload(ctx, market.KeySigner(wk.key), payload)
		if err != nil {
			panic(fmt.Sprintf("chaos: sign a payload the realm served: %v", err))
		}
		req, digest = market.TransferRequest{Intent: t, Signature: sig}, payload.Digest
		break
	}
	op.Digest = digest
	wk.w.mu.Lock()
	wk.w.intents[digest] = op
	wk.w.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if settle.Err() != nil {
			return // unresolved: the checker asks the realm
		}
		o := op
		o.Node, o.Start = wk.node(attempt), time.Now()
		_, err := wk.client(o.Node).Transfer(settle, req, digest)
		o = wk.w.record(o, err)
		switch o.Outcome() {
		case Applied:
			if op.Item != "" {
				wk.w.giveItem(op.Item, receiver)
			}
			return
		case Refused:
			if op.Item != "" {
				wk.resolveItem(settle, op.Item)
			}
			return
		}
		backoff(settle, err)
	}
}

// signIn runs a passkey sign-in on a node and keeps the new session.
func (wk *worker) signIn(ctx context.Context) {
	n := wk.w.intn(len(wk.w.nodes))
	o := Op{Worker: wk.id, Node: n, Kind: KindSignIn, Start: time.Now()}
	token, err := signIn(ctx, wk.w.nodes[n], wk.name, wk.auth)
	o = wk.w.record(o, err)
	if o.Outcome() == Applied {
		wk.tokenMu.Lock()
		wk.token = token
		wk.tokenMu.Unlock()
	}
}

func (wk *worker) client(node int) *market.Client {
	wk.tokenMu.Lock()
	defer wk.tokenMu.Unlock()
	return client(wk.w.nodes[node], wk.token)
}

// record completes o with err's answer and keeps it.
func (w *Workload) record(o Op, err error) Op {
	o.End = time.Now()
	if errors.Is(err, context.Canceled) {
		// The workload gave up on it as it stopped: no answer to judge,
		// but it may have taken effect, so it stays in the history.
		o.Abandoned = true
		w.rec.add(o)
		return o
	}
	var p *market.Problem
	switch {
	case err == nil:
		o.Status = http.StatusOK
	case errors.As(err, &p):
		o.Status, o.Type, o.Reason, o.RequestID = p.Status, strings.TrimPrefix(p.Type, problemBase), p.Reason(), p.RequestID
		if o.Reason == "" && p.Status >= 400 && p.Status < 500 {
			o.Err = p.Detail
		}
	default:
		o.Err = err.Error()
	}
	w.rec.add(o)
	return o
}

const problemBase = "https://zerorealm.dev/problems/"

// backoff waits before a retry: what Retry-After says, at most a second,
// so that the figures see writes resume soon after they can.
func backoff(ctx context.Context, err error) {
	wait := 200 * time.Millisecond
	var p *market.Problem
	if errors.As(err, &p) && p.Status == http.StatusTooManyRequests {
		wait = time.Second
	}
	select {
	case <-ctx.Done():
	case <-time.After(wait):
	}
}

// Intents are every distinct intent sent, by digest.
func (w *Workload) Intents() map[string]Op {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.intents)
}

// signUp registers name with a new passkey on node and returns the
// session token.
func signUp(ctx context.Context, node, name string, auth *webauthntest.Authenticator) (string, string, error) {
	return ceremony(ctx, node, "register", map[string]string{"name": name, "display_name": name}, func(opts []byte) ([]byte, error) {
		return auth.Register(opts, node)
	})
}

// signIn signs name in with its passkey on node.
func signIn(ctx context.Context, node, name string, auth *webauthntest.Authenticator) (string, error) {
	token, _, err := ceremony(ctx, node, "login", map[string]string{"name": name}, func(opts []byte) ([]byte, error) {
		return auth.Assert(opts, node)
	})
	return token, err
}

// ceremony runs a WebAuthn ceremony's begin and finish on node.
func ceremony(ctx context.Context, node, kind string, beginBody any, answer func([]byte) ([]byte, error)) (string, string, error) {
	c := client(node, "")
	var begin map[string]json.RawMessage
	if err := post(ctx, c, "/v1/webauthn/"+kind+"/begin", beginBody, &begin); err != nil {
		return "", "", err
	}
	opts, _ := json.Marshal(begin)
	cred, err := answer(opts)
	if err != nil {
		return "", "", fmt.Errorf("software authenticator: %w", err)
	}
	var id string
	_ = json.Unmarshal(begin["ceremony_id"], &id)
	var out struct {
		Token  string         `json:"token"`
		Avatar map[string]any `json:"avatar"`
	}
	if err := post(ctx, c, "/v1/webauthn/"+kind+"/finish", map[string]any{"ceremony_id": id, "credential": json.RawMessage(cred)}, &out); err != nil {
		return "", "", err
	}
	if out.Token == "" {
		return "", "", errors.New("the realm answered the ceremony without a session token")
	}
	avatarID, _ := out.Avatar["id"].(string)
	return out.Token, avatarID, nil
}

// resolveItem settles who moves an item next after its transfer was
// refused: the worker whose wallet owns it, as the ledger says. A refusal
// may be the effect of an earlier unanswered attempt of the same intent
// (not-owner, nonce-used), or of a worker that believed, from a node that
// lagged, it owned the item. If no node can be read, the item stays
// unresolved, moved by no one.
func (wk *worker) resolveItem(ctx context.Context, item string) {
	for i := range wk.w.nodes {
		st, err := readItem(ctx, wk.w.nodes[i], item)
		if err != nil {
			continue
		}
		for _, p := range wk.w.workers {
			if p.wallet == st.Owner {
				wk.w.giveItem(item, p.id)
			}
		}
		return
	}
}
