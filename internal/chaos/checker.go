package chaos

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/zerorealm/zerorealm/clients/market"
)

// Final is what the realm holds once the workload has stopped and every
// node agrees.
type Final struct {
	// Items are the workload's items with their ledger history, as the
	// first node serves them.
	Items map[string]ItemState
	// Receipted are the intent digests the realm has a receipt for.
	Receipted map[string]bool
	// Balances are every credit balance by owner.
	Balances map[string]*big.Int
	// Executions are what the twin's gateway carried out, read from its
	// journal after the last grant could have; Gateway says the deployment
	// has one to read.
	Executions []Execution
	Gateway    bool
}

// ItemState is an item's owner and the digests of the transfers in its
// ledger history, oldest first.
type ItemState struct {
	Owner   string
	Digests []string
}

// ReadFinal waits until every node serves the same owner and history for
// every item, then reads the receipts of every intent and the credit
// balances.
func ReadFinal(ctx context.Context, nodes []string, items []string, intents []string) (Final, error) {
	f := Final{Items: map[string]ItemState{}, Receipted: map[string]bool{}, Balances: map[string]*big.Int{}}
	deadline := time.Now().Add(60 * time.Second)
	for _, item := range items {
		for {
			states := make([]ItemState, len(nodes))
			var err error
			for i, n := range nodes {
				if states[i], err = readItem(ctx, n, item); err != nil {
					break
				}
			}
			if err == nil && allSame(states) {
				f.Items[item] = states[0]
				break
			}
			if time.Now().After(deadline) {
				return f, fmt.Errorf("chaos: the nodes do not agree on %s within 60s (last error %v): %+v", item, err, states)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	c := client(nodes[0], "")
	// An intent applied without its answer is receipted by its node's
	// reconciler a few seconds after the workload stopped: read the
	// missing receipts again until none has come for receiptQuiet.
	missing := intents
	lastNew := time.Now()
	for len(missing) > 0 {
		var still []string
		for _, d := range missing {
			var doc market.ReceiptDocument
			err := get(ctx, c, "/v1/receipts/"+d, &doc)
			var p *market.Problem
			switch {
			case err == nil:
				f.Receipted[d] = true
			case asProblem(err, &p) && p.Status == http.StatusNotFound:
				still = append(still, d)
			default:
				return f, fmt.Errorf("chaos: receipt %s: %w", d, err)
			}
		}
		if len(still) < len(missing) && len(missing) < len(intents) {
			lastNew = time.Now()
		}
		missing = still
		if time.Since(lastNew) > receiptQuiet || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	after := ""
	for {
		var page struct {
			Balances []market.Balance `json:"balances"`
			Next     string           `json:"next"`
		}
		if err := get(ctx, c, "/v1/assets/collections/"+creditCollection+"?limit=500&after="+after, &page); err != nil {
			return f, fmt.Errorf("chaos: credit balances: %w", err)
		}
		for _, b := range page.Balances {
			v, ok := new(big.Int).SetString(b.Balance, 10)
			if !ok {
				return f, fmt.Errorf("chaos: balance %q of %s", b.Balance, b.Owner)
			}
			f.Balances[b.Owner] = v
		}
		if page.Next == "" {
			return f, nil
		}
		after = page.Next
	}
}

// receiptQuiet is how long the checker waits for another receipt to be
// issued after the last one it saw come: two passes of the reconciler
// (assets.Config.ReconcileInterval, 2 s) and a block's append.
const receiptQuiet = 6 * time.Second

func allSame(states []ItemState) bool {
	for _, s := range states[1:] {
		if s.Owner != states[0].Owner || !slices.Equal(s.Digests, states[0].Digests) {
			return false
		}
	}
	return true
}

func readItem(ctx context.Context, node, item string) (ItemState, error) {
	var a struct {
		Owner   string `json:"owner"`
		History []struct {
			Event  string `json:"event"`
			Digest string `json:"digest"`
		} `json:"history"`
	}
	if err := get(ctx, client(node, ""), "/v1/assets/items/"+itemCollection+"/"+item, &a); err != nil {
		return ItemState{}, err
	}
	s := ItemState{Owner: a.Owner}
	for _, e := range a.History {
		if e.Digest != "" {
			s.Digests = append(s.Digests, strings.ToLower(e.Digest))
		}
	}
	return s, nil
}

// Verdict is what the checker found; OK when every list is empty.
type Verdict struct {
	// NotLinearizable names the items whose history porcupine could not
	// linearize.
	NotLinearizable []string
	// ExactlyOnce lists receipted transfers missing from, or repeated in,
	// the ledger, and ledger entries of no intent the workload sent.
	ExactlyOnce []string
	// Unreceipted lists intents applied without a receipt: in an item's
	// ledger, or explaining exactly a wallet's difference from its
	// receipts. Their answer was lost and their receipt not issued (yet).
	Unreceipted []string
	// Conservation lists broken balance sums and wallets whose balance
	// is not what their receipts say.
	Conservation []string
	// Audit is the audit verification's failure, if any.
	Audit string
	// BadAnswers are answers outside the documented ones.
	BadAnswers []string
	// Commands lists twin commands carried out twice, answered done and
	// not carried out once, carried out though refused, or carried out
	// without being sent; CommandsChecked says how many were held to the
	// gateway's journal, and Unresolved those that never had a final
	// answer (carried out once or not at all), with their answers.
	Commands        []string
	CommandsChecked int
	Unresolved      []string
}

// OK reports whether nothing was found.
func (v Verdict) OK() bool {
	return len(v.NotLinearizable) == 0 && len(v.ExactlyOnce) == 0 && len(v.Conservation) == 0 && v.Audit == "" && len(v.BadAnswers) == 0 &&
		len(v.Commands) == 0
}

func (v Verdict) String() string {
	if v.OK() {
		s := "ok: linearizable, exactly once, conserved, audit verified, every answer documented"
		if len(v.Unreceipted) > 0 {
			s += fmt.Sprintf(" (%d applied transfers without a receipt yet)", len(v.Unreceipted))
		}
		if v.CommandsChecked > 0 {
			s += fmt.Sprintf("; %d twin commands carried out at most once, each done answer exactly once, no refused one (%d without a final answer)", v.CommandsChecked, len(v.Unresolved))
		}
		return s
	}
	var b strings.Builder
	part := func(name string, list []string) {
		if len(list) > 0 {
			fmt.Fprintf(&b, "%s (%d): %s; ", name, len(list), strings.Join(list[:min(len(list), 10)], ", "))
		}
	}
	part("not linearizable", v.NotLinearizable)
	part("exactly once", v.ExactlyOnce)
	part("unreceipted", v.Unreceipted)
	part("conservation", v.Conservation)
	if v.Audit != "" {
		fmt.Fprintf(&b, "audit: %s; ", v.Audit)
	}
	part("bad answers", v.BadAnswers)
	part("twin commands", v.Commands)
	return strings.TrimSuffix(b.String(), "; ")
}

// Check holds the history against the final state. down reports whether a
// realm node was down (killed) at a time, when a request to it may go
// unanswered.
func Check(w *Workload, ops []Op, f Final, down func(node int, at time.Time) bool) Verdict {
	var v Verdict
	intents := w.Intents()
	v.NotLinearizable = checkLinearizable(w, ops, f)
	v.ExactlyOnce, v.Unreceipted = checkExactlyOnce(ops, intents, f)
	v.Conservation = checkConservation(w, ops, intents, f, &v.Unreceipted)
	v.BadAnswers = checkAnswers(ops, down)
	if f.Gateway {
		v.Commands, v.Unresolved = checkCommands(ops, w.Commands(), f.Executions)
		v.CommandsChecked = len(w.Commands())
	}
	return v
}

// itemInput is a transfer attempt or the final read, for porcupine.
type itemInput struct {
	read     bool
	from, to string
	digest   string
}

// itemOutput: outcome of an attempt; for the read, the owner and the
// applied digests.
type itemOutput struct {
	outcome int
	owner   string
	applied string
}

// itemState is the register the ledger keeps per item: its owner and the
// transfers applied to it (sorted, comma-joined, so states compare with ==).
type itemState struct {
	owner   string
	applied string
}

func hasDigest(applied, d string) bool {
	return slices.Contains(strings.Split(applied, ","), d)
}

func addDigest(applied, d string) string {
	list := strings.Split(applied, ",")
	if applied == "" {
		list = nil
	}
	list = append(list, d)
	sort.Strings(list)
	return strings.Join(list, ",")
}

// itemModel is the ledger of one item as a register: an applied answer is
// the transfer taking effect (the owner was from) or a replay of one that
// did; a refusal changes nothing; an unknown answer may have taken effect
// or not; the final read sees the owner and exactly the transfers applied.
var itemModel = porcupine.NondeterministicModel{
	Init: func() []any { return nil }, // set per item
	Step: func(state, input, output any) []any {
		s, in, out := state.(itemState), input.(itemInput), output.(itemOutput)
		if in.read {
			if s.owner == out.owner && s.applied == out.applied {
				return []any{s}
			}
			return nil
		}
		applied := hasDigest(s.applied, in.digest)
		apply := itemState{owner: in.to, applied: addDigest(s.applied, in.digest)}
		switch out.outcome {
		case Applied:
			if applied {
				return []any{s}
			}
			if s.owner == in.from {
				return []any{apply}
			}
			return nil
		case Refused:
			// Refused intents change nothing. A refusal is not held to
			// the register: a node may refuse (not-owner, conflict) from
			// a view of the ledger that lags, which the documented answer
			// allows (read again, sign anew); the ledger never applies
			// from it.
			return []any{s}
		default:
			if !applied && s.owner == in.from {
				return []any{s, apply}
			}
			return []any{s}
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(itemInput), output.(itemOutput)
		if in.read {
			return "read -> " + out.owner
		}
		return fmt.Sprintf("transfer %s %s->%s = %d", short(in.digest), short(in.from), short(in.to), out.outcome)
	},
}

func short(s string) string { return s[:min(len(s), 10)] }

// checkLinearizable runs porcupine on each item's attempts and the final
// read.
func checkLinearizable(w *Workload, ops []Op, f Final) []string {
	byItem := map[string][]porcupine.Operation{}
	var end int64
	for _, o := range ops {
		end = max(end, o.End.UnixNano())
		if o.Kind != KindItem {
			continue
		}
		ret := o.End.UnixNano()
		if o.Outcome() == Unknown {
			// It may take effect at any time after it was sent.
			ret = math.MaxInt64
		}
		in := itemInput{from: o.From, to: o.To, digest: strings.ToLower(o.Digest)}
		byItem[o.Item] = append(byItem[o.Item], porcupine.Operation{ClientId: o.Worker, Input: in, Call: o.Start.UnixNano(), Output: itemOutput{outcome: o.Outcome()}, Return: ret})
	}
	var bad []string
	for item, minted := range w.Items {
		st, ok := f.Items[item]
		if !ok {
			bad = append(bad, item+" (not read)")
			continue
		}
		applied := append([]string(nil), st.Digests...)
		sort.Strings(applied)
		history := append(byItem[item], porcupine.Operation{ClientId: len(w.workers), Input: itemInput{read: true},
			Call: end + 1, Output: itemOutput{owner: st.Owner, applied: strings.Join(applied, ",")}, Return: end + 2})
		model := itemModel
		model.Init = func() []any { return []any{itemState{owner: minted}} }
		if res := porcupine.CheckOperationsTimeout(model.ToModel(), history, 30*time.Second); res != porcupine.Ok {
			bad = append(bad, fmt.Sprintf("%s (%s, %d operations; %s)", item, res, len(history), describeItem(byItem[item], st)))
		}
	}
	sort.Strings(bad)
	return bad
}

// checkExactlyOnce: every applied answer has a receipt, every receipted
// item transfer is in its item's ledger once, no digest is in a ledger
// twice or without an intent behind it.
func checkExactlyOnce(ops []Op, intents map[string]Op, f Final) (bad, unreceipted []string) {
	answered := map[string]bool{}
	for _, o := range ops {
		if (o.Kind == KindItem || o.Kind == KindCredits) && o.Outcome() == Applied {
			answered[strings.ToLower(o.Digest)] = true
		}
	}
	receipted := map[string]bool{}
	for d := range f.Receipted {
		receipted[strings.ToLower(d)] = true
	}
	for d := range answered {
		if !receipted[d] {
			bad = append(bad, "applied answer without a receipt: "+short(d))
		}
	}
	inLedger := map[string]int{}
	for item, st := range f.Items {
		for _, d := range st.Digests {
			inLedger[d]++
			if inLedger[d] == 2 {
				bad = append(bad, fmt.Sprintf("%s applied twice to %s", short(d), item))
			}
		}
	}
	known := map[string]Op{}
	for d, o := range intents {
		known[strings.ToLower(d)] = o
	}
	for d := range inLedger {
		if _, ok := known[d]; !ok {
			bad = append(bad, "ledger entry of no intent sent: "+short(d))
			continue
		}
		if !receipted[d] {
			unreceipted = append(unreceipted, short(d))
		}
	}
	for d, o := range known {
		if o.Kind == KindItem && receipted[d] && inLedger[d] != 1 {
			bad = append(bad, fmt.Sprintf("receipted transfer %s of %s is in its ledger %d times", short(d), o.Item, inLedger[d]))
		}
	}
	sort.Strings(bad)
	sort.Strings(unreceipted)
	return bad, unreceipted
}

// checkConservation: the credits add up to the scene's supply and what
// the workload minted, and each wallet holds what was minted to it plus
// what receipted intents brought in, minus what they took out.
func checkConservation(w *Workload, ops []Op, intents map[string]Op, f Final, unreceipted *[]string) []string {
	var bad []string
	// Only an intent some attempt of which went unanswered (or answered
	// 503, 507) may have been applied without its answer: one refused at
	// every attempt was not.
	unanswered := map[string]bool{}
	for _, o := range ops {
		if o.Kind == KindCredits && o.Outcome() == Unknown {
			unanswered[o.Digest] = true
		}
	}
	total := new(big.Int)
	for _, v := range f.Balances {
		total.Add(total, v)
	}
	if supply := new(big.Int).SetUint64(sceneCredits + w.CreditsMinted); total.Cmp(supply) != 0 {
		bad = append(bad, fmt.Sprintf("credits total %s after the run, %s were minted", total, supply))
	}
	want := map[string]*big.Int{}
	for _, wallet := range w.Wallets {
		want[wallet] = new(big.Int).SetUint64(creditsPerWallet)
	}
	for d, o := range intents {
		if o.Kind != KindCredits || !f.Receipted[d] {
			continue
		}
		amount := new(big.Int).SetUint64(o.Amount)
		want[o.From].Sub(want[o.From], amount)
		want[o.To].Add(want[o.To], amount)
	}
	// An intent that was never answered with success and has no receipt
	// may still have been applied (its answer lost, its receipt not
	// issued): such intents explain a difference when they account for
	// it exactly, and are reported as applied without a receipt.
	diff := map[string]*big.Int{}
	for _, wallet := range w.Wallets {
		diff[wallet] = new(big.Int).Sub(orZero(f.Balances[wallet]), want[wallet])
	}
	var digests []string
	for d, o := range intents {
		if o.Kind == KindCredits && !f.Receipted[d] && unanswered[d] {
			digests = append(digests, d)
		}
	}
	// Smaller amounts first: an exact account of each difference is
	// found before a larger intent swallows two smaller ones' share.
	sort.Slice(digests, func(i, j int) bool {
		a, b := intents[digests[i]], intents[digests[j]]
		return a.Amount < b.Amount || a.Amount == b.Amount && digests[i] < digests[j]
	})
	for _, d := range digests {
		o := intents[d]
		amount := new(big.Int).SetUint64(o.Amount)
		if diff[o.To].Cmp(amount) >= 0 && new(big.Int).Neg(diff[o.From]).Cmp(amount) >= 0 {
			diff[o.To].Sub(diff[o.To], amount)
			diff[o.From].Add(diff[o.From], amount)
			*unreceipted = append(*unreceipted, short(d)+" ("+strconv.FormatUint(o.Amount, 10)+" credits)")
		}
	}
	outcomes := map[string][]string{}
	for _, o := range ops {
		if o.Kind == KindCredits {
			outcomes[o.Digest] = append(outcomes[o.Digest], fmt.Sprintf("%d %s", o.Status, o.Type))
		}
	}
	for _, wallet := range w.Wallets {
		if diff[wallet].Sign() == 0 {
			continue
		}
		// The intents without a receipt that touch the wallet, with the
		// answers their attempts got: what the difference may be made of.
		var near []string
		for d, o := range intents {
			if o.Kind == KindCredits && !f.Receipted[d] && (o.From == wallet || o.To == wallet) {
				near = append(near, fmt.Sprintf("%s %d %s->%s %v", short(d), o.Amount, short(o.From), short(o.To), outcomes[d]))
			}
		}
		sort.Strings(near)
		bad = append(bad, fmt.Sprintf("wallet %s holds %s credits, %s more than its receipts say (unreceipted intents: %s)", short(wallet), orZero(f.Balances[wallet]), diff[wallet], strings.Join(near, "; ")))
	}
	owners := map[string]int{}
	for item := range w.Items {
		if st, ok := f.Items[item]; ok {
			owners[st.Owner]++
		}
	}
	if n := sumInts(owners); n != len(w.Items) {
		bad = append(bad, fmt.Sprintf("%d items have an owner, %d were minted", n, len(w.Items)))
	}
	return bad
}

func orZero(v *big.Int) *big.Int {
	if v == nil {
		return new(big.Int)
	}
	return v
}

func sumInts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// documented are the problem types (docs/errors.md) an answer during a
// fault may carry, by status.
var documented = map[int][]string{
	http.StatusBadRequest:          {"transfer-rejected", "invalid-request", "ceremony-unknown"},
	http.StatusForbidden:           {"transfer-rejected", "forbidden"},
	http.StatusConflict:            {"transfer-rejected", "conflict", "idempotency-key-in-progress", "receipt-pending", "gateway-refused"},
	http.StatusTooManyRequests:     {"rate-limited"},
	http.StatusServiceUnavailable:  {"unavailable", "request-timeout", "not-ready", "gateway-unavailable"},
	http.StatusInsufficientStorage: {"insufficient-storage"},
}

// MaxWait is the longest an answer may take: the request deadline and a
// second.
const MaxWait = RequestTimeout + time.Second

// checkAnswers lists answers that are not documented: a 500 or another
// undocumented status or type, a 401 (every session of the workload is
// live), no answer from a node that was up, or a wait past MaxWait.
func checkAnswers(ops []Op, down func(node int, at time.Time) bool) []string {
	var bad []string
	for _, o := range ops {
		if o.Abandoned {
			continue
		}
		what := fmt.Sprintf("%s on node %d at %s", o.Kind, o.Node, o.Start.Format("15:04:05.000"))
		switch {
		case o.Status == 0 && !(down(o.Node, o.Start) || down(o.Node, o.End)):
			bad = append(bad, fmt.Sprintf("%s: no answer from a live node (%s)", what, o.Err))
		case o.Status >= 300 && !slices.Contains(documented[o.Status], o.Type):
			bad = append(bad, fmt.Sprintf("%s: %d %s %s", what, o.Status, o.Type, o.Err))
		}
		if o.Status != 0 && o.Wait() > MaxWait {
			bad = append(bad, fmt.Sprintf("%s: answered %d %s after %s (request %s)", what, o.Status, o.Type, o.Wait().Round(time.Millisecond), o.RequestID))
		}
	}
	return bad
}

// describeItem summarizes an item's attempts against its ledger, for a
// finding: how many intents were applied, refused or left unknown, and
// the ledger's transfers no attempt was recorded for.
func describeItem(ops []porcupine.Operation, st ItemState) string {
	outcomes := map[string]int{}
	tried := map[string]bool{}
	for _, o := range ops {
		in, out := o.Input.(itemInput), o.Output.(itemOutput)
		tried[in.digest] = true
		outcomes[[]string{"applied", "refused", "unknown"}[out.outcome]]++
	}
	var untried []string
	for _, d := range st.Digests {
		if !tried[d] {
			untried = append(untried, short(d))
		}
	}
	return fmt.Sprintf("attempts %v, %d transfers in the ledger, not attempted: %v", outcomes, len(st.Digests), untried)
}
