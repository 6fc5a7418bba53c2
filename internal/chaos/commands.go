package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/zerorealm/zerorealm/clients/market"
)

// commandGap is the pause between an operator's commands: under the
// realm's operator rate (5/s), so that what the operators see depends on
// the faults, not on the rate limit.
const commandGap = 300 * time.Millisecond

// operate is the worker's operator of the twin: until ctx ends, it sets
// the worker's own valve to a new value, each command with an
// Idempotency-Key of its own, through the nodes in turn.
func (wk *worker) operate(ctx, settle context.Context) {
	for n := 0; ctx.Err() == nil; n++ {
		wk.command(ctx, settle, n)
		sleep(ctx, commandGap)
	}
}

// commandAnswer is the part of a command's answer (command.Answer) the
// workload reads.
type commandAnswer struct {
	Status  string `json:"status"`
	Command struct {
		Hash string `json:"hash"`
	} `json:"command"`
	Ack *struct {
		Reason string `json:"reason"`
	} `json:"ack"`
}

// command sends the operator's n-th command until it has a final answer
// (the gateway carried it out, or it was refused) or settle ends. First it
// asks a node for the command's hash, which the gateway's grant will carry,
// as a console asks before a step-up; then it sends the command, and sends
// it again, unchanged and with the same key, to the next node while the
// answer cannot tell what happened (none, 503, or 409 while the first
// request with the key has no answer).
func (wk *worker) command(ctx, settle context.Context, n int) {
	valve := fmt.Sprintf("valve-%d", wk.id)
	key := fmt.Sprintf("w%d-c%d", wk.id, n)
	value := float64(wk.w.intn(101))
	body := map[string]any{"op": "set", "value": value, "reason": "chaos workload"}
	path := "/v1/twins/" + chaosTwin + "/actuators/" + valve + "/commands"
	op := Op{Worker: wk.id, Kind: KindCommand, Key: key, Actuator: valve, Value: value}
	first := wk.id + n // alternate the first node from one command to the next
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return // nothing was sent
		}
		node := (first + attempt) % len(wk.w.nodes)
		p := Op{Worker: wk.id, Node: node, Kind: KindDigest, Key: key, Start: time.Now()}
		var digest struct {
			Hash string `json:"hash"`
		}
		err := postKeyed(ctx, wk.client(node), path+"/digest", key, body, &digest)
		wk.w.record(p, err)
		if err == nil && digest.Hash != "" {
			op.Digest = strings.ToLower(digest.Hash)
			break
		}
		backoffCommand(ctx, err)
	}
	wk.w.mu.Lock()
	wk.w.commands[op.Digest] = op
	wk.w.mu.Unlock()
	for attempt := 0; settle.Err() == nil; attempt++ {
		o := op
		o.Node, o.Start = (first+attempt)%len(wk.w.nodes), time.Now()
		var ans commandAnswer
		err := postKeyed(settle, wk.client(o.Node), path, key, body, &ans)
		if err == nil {
			o.Result = ans.Status
			if ans.Ack != nil {
				o.Reason = ans.Ack.Reason
			}
			if ans.Command.Hash != "" && !strings.EqualFold(ans.Command.Hash, op.Digest) {
				o.Err = "answered for command " + ans.Command.Hash
			}
		}
		o = wk.w.record(o, err)
		if oc := o.Outcome(); oc == Applied || oc == Refused {
			return
		}
		backoffCommand(settle, err)
	}
}

// backoffCommand is backoff, but a second while the key's first request
// has no answer: a node that died holding it leaves it so for minutes.
func backoffCommand(ctx context.Context, err error) {
	var p *market.Problem
	if errors.As(err, &p) && p.Status == http.StatusConflict && strings.HasSuffix(p.Type, "idempotency-key-in-progress") {
		sleep(ctx, time.Second)
		return
	}
	backoff(ctx, err)
}

// Commands are every distinct twin command sent, by hash.
func (w *Workload) Commands() map[string]Op {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.commands)
}
