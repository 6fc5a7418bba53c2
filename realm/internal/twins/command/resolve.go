package command

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/idempotency"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
)

// Ambiguous outcomes. A command's answer is stored under its
// Idempotency-Key after the gateway has answered; a node that stops in
// between (or cannot write the answer) leaves the key claimed with no
// answer, and every retry would get 409 until the key expires. Before a
// claimed command's grant leaves, the node therefore records it as in
// flight (the "twin-inflight" bucket, by command hash): the grant's
// identifying fields and the answer as it stands before the gateway's
// acknowledgement. The record goes when the answer is stored or the key
// released.
//
// A record still there once its grant has expired names a command whose
// node lost track of it. Any node then asks the gateway (a signed status
// query, twin.Dispatcher.Status) and settles it:
//   - executed or refused: the gateway's journal holds the
//     acknowledgement it gave; the answer is completed with it and stored,
//     byte for byte what the first node would have stored, and a retry
//     gets it (200, Idempotent-Replayed);
//   - not executed: the grant expired unseen, and the journal reaches back
//     before it, so it never will be carried out: the key is released, and
//     a retry decides and carries the command out anew;
//   - anything else (the gateway is away, its journal does not reach back,
//     the grant is still running): nothing changes, the next attempt asks
//     again.
//
// A gateway that refuses a grant as command_in_progress is carrying out an
// earlier grant of the same command (one whose node's delivery timed out
// before the driver finished, and whose client sent the command again):
// that refusal says nothing of what the command came to, so it is never
// stored as the command's answer. The node answers ErrOutcomePending,
// keeps the key claimed and marks the record in flight as handed back, so
// that the next retry and the reconciler ask the gateway at once instead
// of after the grant's expiry, and settle the command with the
// acknowledgement of the grant that ran.
//
// A retry with the key does this at once (ClaimCommand); the reconciler
// does it every ResolveEvery for records nobody retries. Removing the
// record with its revision decides which node settles it.

const (
	// defaultResolveEvery is how often the reconciler looks for commands
	// whose node lost track of them.
	defaultResolveEvery = 5 * time.Second
	// resolveGrace is how long after its grant's expiry a command in
	// flight is left to its own node: the gateway refuses a grant past its
	// expiry plus its skew allowance, 500 ms by default.
	resolveGrace = 2 * time.Second
	// defaultUnsentAfter is the age past which a claimed key with no
	// command in flight cannot lead to a grant any more: its request's
	// decision has long ended (the request timeout is 3 s by default),
	// and a grant made before that has expired, with the gateway's skew
	// allowance.
	defaultUnsentAfter = twin.MaxGrantLifetime + resolveGrace + 3*time.Second
	// maxResolvePerPass bounds the gateway queries of one reconciler pass.
	maxResolvePerPass = 256
	// statusAnswered is the HTTP status the API gives a command its
	// gateway answered (done, refused or failed): 200 OK. The service
	// speaks no HTTP, but the Idempotency-Key's record keeps the status.
	statusAnswered = 200
)

// inFlight is a claimed command whose grant has been sent, or is about to
// be.
type inFlight struct {
	Operator string     `json:"operator"`
	Key      string     `json:"key"`
	Grant    twin.Grant `json:"grant"`
	// Answer is the command's answer without the gateway's part.
	Answer *Answer `json:"answer"`
	// HandedBack: its node answered the client ErrOutcomePending and no
	// longer waits for the gateway, so anyone may ask at once.
	HandedBack bool `json:"handed_back,omitempty"`
	// Approval is the owner's approval (owner.id) the command runs for:
	// its answer goes to that record, not under a key, and the approval
	// queue settles it (approved.go), not the reconciler here.
	Approval string `json:"approval,omitempty"`
}

// ErrOutcomePending answers a claimed command whose gateway is carrying
// out an earlier grant of it (command_in_progress): what the command came
// to is not known yet. The caller neither stores an answer nor frees the
// key; a retry gets the outcome once the gateway's journal has it. It is
// an idempotency.ErrInProgress, which the edge answers 409 with
// Retry-After.
var ErrOutcomePending = fmt.Errorf("%w: the gateway is still carrying out an earlier grant of this command", idempotency.ErrInProgress)

// notDecidedYet reports whether a gateway's refusal says only that the
// command's outcome is not known yet, rather than what it came to.
// journal_failed is not one: the gateway checked under its journal's lock
// that no grant of the command had run or was running before it failed to
// record this one, so the command was not carried out, as under an
// emergency stop.
func notDecidedYet(ack *twin.Ack) bool {
	return ack.Result == twin.ResultRefused && ack.Reason == twin.ReasonInProgress
}

func inFlightKey(hash common.Hash) string { return hex.EncodeToString(hash[:]) }

// settler keeps the record of the commands in flight and settles those
// whose node lost track of them, from their gateways' journals.
type settler struct {
	log      *slog.Logger
	inflight *store.Bucket // claimed commands whose grant was sent
	commands *idempotency.Keys
	disp     *twin.Dispatcher
	gateways *Gateways
	auditor  Auditor
	events   Events
	clock    clock.Clock // judges a grant's expiry
	// critical settles the approved critical commands whose node lost
	// track of them (critical.go), on each pass of the reconciler.
	critical func(ctx context.Context) (int, error)
}

// mark records a claimed command's grant before it is sent.
func (sl *settler) mark(ctx context.Context, c twin.Command, g twin.Grant, answer *Answer, handedBack bool) error {
	data, err := json.Marshal(inFlight{Operator: c.Operator, Key: c.Key, Grant: g, Answer: answer, HandedBack: handedBack, Approval: approvalOf(ctx)})
	if err != nil {
		return err
	}
	if _, err := sl.inflight.Put(ctx, inFlightKey(g.Command), data); err != nil {
		return fmt.Errorf("record the command in flight: %w", err)
	}
	return nil
}

// ClaimCommand takes c's Idempotency-Key for this request (see
// idempotency.Keys.Claim): nil when the caller now holds it and carries
// the command out (ExecuteClaimed), the record of the first answer for a
// retry, idempotency.ErrInProgress while the first has no answer and its
// outcome cannot be settled yet, or ErrKeyReused.
func (s *Service) ClaimCommand(ctx context.Context, c twin.Command) (*idempotency.Record, error) {
	hash := c.Hash()
	for attempt := 0; ; attempt++ {
		rec, err := s.commands.Claim(ctx, c.Operator, c.Key, hash[:])
		if err != nil || rec == nil || rec.Done() {
			return rec, err
		}
		if attempt > 0 {
			return nil, idempotency.ErrInProgress
		}
		settled, err := s.settle.resolve(ctx, hash)
		if err == nil && !settled {
			settled, err = s.settle.freeUnsent(ctx, c, rec, s.unsentAfter)
		}
		if err != nil {
			s.log.Warn("settle a command in flight", "command", hash.Hex(), "err", err)
		}
		if !settled {
			return nil, idempotency.ErrInProgress
		}
	}
}

// CompleteCommand stores the answer to c under its Idempotency-Key and
// clears its record in flight.
func (s *Service) CompleteCommand(ctx context.Context, c twin.Command, status int, body []byte) error {
	hash := c.Hash()
	if err := s.commands.Complete(ctx, c.Operator, c.Key, hash[:], status, body); err != nil {
		return err
	}
	return s.settle.clear(ctx, hash)
}

// ReleaseCommand frees c's Idempotency-Key after a refusal and clears its
// record in flight.
func (s *Service) ReleaseCommand(ctx context.Context, c twin.Command) error {
	if err := s.commands.Release(ctx, c.Operator, c.Key); err != nil {
		return err
	}
	return s.settle.clear(ctx, c.Hash())
}

func (sl *settler) clear(ctx context.Context, hash common.Hash) error {
	if err := sl.inflight.Delete(ctx, inFlightKey(hash), 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("clear the command in flight: %w", err)
	}
	return nil
}

// freeUnsent frees c's key, held by rec with no answer, when its grant
// never left: no record in flight (the node records one before the grant
// leaves, resolve.go) and the claim older than any grant of it could
// still be sent under. The claiming node then stopped, or could neither
// record the grant nor free the key (a full disk, a store without
// quorum), and the key would otherwise answer 409 until it expires. It
// reports whether it freed the key; the caller claims it anew and the
// command is decided and carried out afresh. Should a node have stalled
// past all of that and send its grant after all, the gateway's journal
// answers the second grant of the same command with the first's
// acknowledgement: nothing moves twice.
func (sl *settler) freeUnsent(ctx context.Context, c twin.Command, rec *idempotency.Record, unsentAfter time.Duration) (bool, error) {
	if rec.Created.IsZero() || time.Since(rec.Created) < unsentAfter {
		return false, nil
	}
	hash := c.Hash()
	// Asked of the stream's leader: a replica that lags may not have the
	// record yet. A record still there, or one that cannot be read, is
	// resolve's to settle. A record cleared goes with an answer stored
	// or the key freed, which the revision below tells; or with a
	// settling whose last write failed, which the journal covers.
	switch last, err := sl.inflight.Last(ctx, inFlightKey(hash)); {
	case errors.Is(err, store.ErrNotFound):
		// Never recorded, or its history is gone with its expiry.
	case err != nil:
		return false, err
	case !last.Deleted:
		return false, nil
	}
	freed, err := sl.commands.ReleaseHeld(ctx, c.Operator, c.Key, rec.Revision)
	if err != nil || !freed {
		return false, err
	}
	sl.log.Info("a command's key held with no grant sent was freed", "command", hash.Hex(), "claimed", rec.Created)
	return true, nil
}

// resolve settles the command in flight under hash if its node lost
// track of it, and reports whether it did (an answer stored, or the key
// released).
func (sl *settler) resolve(ctx context.Context, hash common.Hash) (bool, error) {
	e, err := sl.inflight.Get(ctx, inFlightKey(hash))
	if errors.Is(err, store.ErrNotFound) {
		// No grant was sent, or its node is still deciding: nothing a
		// gateway can tell.
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return sl.resolveEntry(ctx, e)
}

func (sl *settler) resolveEntry(ctx context.Context, e store.Entry) (bool, error) {
	var m inFlight
	if err := json.Unmarshal(e.Value, &m); err != nil || m.Answer == nil {
		return false, fmt.Errorf("command in flight %s is unreadable: %v", e.Key, err)
	}
	if m.Approval != "" {
		return false, nil // the approval queue's to settle (approved.go)
	}
	if !m.HandedBack && sl.clock.Now().Before(twin.FromMillis(m.Grant.Expiry).Add(resolveGrace)) {
		return false, nil // its own node is on it
	}
	st, err := sl.disp.Status(ctx, &m.Grant)
	if err != nil {
		return false, err
	}
	hash := m.Grant.Command
	switch st.Status.State {
	case twin.StateExecuted, twin.StateRefused:
		if !sl.take(ctx, e) {
			return false, nil
		}
		answer := m.Answer
		sl.gateways.withAck(answer, *st.Ack)
		body := EncodeAnswer(answer)
		if err := sl.commands.Complete(ctx, m.Operator, m.Key, hash[:], statusAnswered, body); err != nil {
			sl.restore(ctx, e)
			return false, err
		}
		sl.auditSettled(ctx, &m, string(st.Ack.Ack.Result), st.Ack.Ack.Result == twin.ResultDone)
		sl.events.Outcome(answer)
		sl.log.Info("a command its node lost track of was settled from its gateway's journal", "command", hash.Hex(), "result", st.Ack.Ack.Result)
		return true, nil
	case twin.StateNotExecuted:
		if !sl.take(ctx, e) {
			return false, nil
		}
		if err := sl.commands.Release(ctx, m.Operator, m.Key); err != nil {
			sl.restore(ctx, e)
			return false, err
		}
		sl.auditSettled(ctx, &m, resultUndelivered, false)
		sl.log.Info("a command its node lost track of was never carried out: its key is free", "command", hash.Hex())
		return true, nil
	}
	return false, nil
}

// take removes the record at the revision read: of the nodes
// that settle it at once, one wins.
func (sl *settler) take(ctx context.Context, e store.Entry) bool {
	return sl.inflight.Delete(ctx, e.Key, e.Revision) == nil
}

// restore puts a record back whose settling failed half-way, for
// the next attempt.
func (sl *settler) restore(ctx context.Context, e store.Entry) {
	if _, err := sl.inflight.Create(ctx, e.Key, e.Value); err != nil {
		sl.log.Warn("restore a command in flight", "key", e.Key, "err", err)
	}
}

// auditSettled records what a settled command came to: its decision's
// event was lost with the node that made it.
func (sl *settler) auditSettled(ctx context.Context, m *inFlight, result string, done bool) {
	g := &m.Grant
	ev := audit.Event{Actor: m.Operator, Action: scenes.ActionCommandActuator, Resource: scenes.ActuatorUID(g.Twin, g.Actuator).String(),
		Outcome: audit.Deny, Reasons: []string{"settled from the gateway's journal after the deciding node lost track of it: " + result},
		Signals: map[string]any{auditDecision: string(audit.Allow), auditCommand: g.Command.Hex(), auditNonce: g.Nonce, auditResult: result, "resolved": true}}
	if done {
		ev.Outcome = audit.Allow
	}
	sl.auditor.RecordQueued(ctx, ev)
}

// reconcile settles, every ResolveEvery until ctx ends, the commands in
// flight whose node lost track of them and whose client does not retry.
func (sl *settler) reconcile(ctx context.Context, every time.Duration) {
	clock.Every(ctx, clock.Real{}, every, func(ctx context.Context) {
		if n, err := sl.reconcileOnce(ctx); err != nil && ctx.Err() == nil {
			sl.log.Warn("settle commands in flight; the next pass retries", "settled", n, "err", err)
		}
		if sl.critical == nil {
			return
		}
		if n, err := sl.critical(ctx); err != nil && ctx.Err() == nil {
			sl.log.Warn("settle approved critical commands; the next pass retries", "settled", n, "err", err)
		}
	})
}

// reconcileOnce is one pass of the reconciler.
func (sl *settler) reconcileOnce(ctx context.Context) (int, error) {
	keys, err := sl.inflight.Keys(ctx)
	if err != nil {
		return 0, err
	}
	settled := 0
	var errs []error
	for i, k := range keys {
		if i == maxResolvePerPass || ctx.Err() != nil {
			break
		}
		e, err := sl.inflight.Get(ctx, k)
		if err != nil {
			continue // settled meanwhile
		}
		ok, err := sl.resolveEntry(ctx, e)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			settled++
		}
	}
	return settled, errors.Join(errs...)
}
