package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/twin"
)

// Handle verifies one grant received on the command subject of actuator
// and, if every check passes, carries it out. It always returns a signed
// acknowledgement: done, refused with the reason, or failed.
//
// The checks run cheapest and least stateful first. The nonce is spent
// once the signature and validity window are known good (so forged or
// stale grants cannot fill the replay cache) and before anything else can
// refuse: a grant is used once, whatever its outcome.
func (g *Gateway) Handle(ctx context.Context, actuator string, data []byte) twin.SignedAck {
	now := g.cfg.Now()
	sg, err := twin.DecodeSignedGrant(data)
	if err != nil {
		return g.refuse(twin.Grant{Twin: g.cfg.Twin, Actuator: actuator}, now, twin.ReasonMalformed, err.Error())
	}
	gr := sg.Grant
	if gr.Twin != g.cfg.Twin {
		return g.refuse(gr, now, twin.ReasonForeignTwin, fmt.Sprintf("grant is for twin %s; this gateway serves %s", gr.Twin, g.cfg.Twin))
	}
	a, ok := g.actuators[gr.Actuator]
	if !ok || gr.Actuator != actuator {
		return g.refuse(gr, now, twin.ReasonUnknownActuator, fmt.Sprintf("grant is for actuator %s, received for %s", gr.Actuator, actuator))
	}
	// The digest the signature is checked against is the one the journal
	// records: hashed once.
	signer, digest, err := sg.SignerAndDigest()
	if err != nil {
		return g.refuse(gr, now, twin.ReasonBadSignature, err.Error())
	}
	if !g.trustedAt(signer, now) {
		return g.refuse(gr, now, twin.ReasonUntrustedKey, fmt.Sprintf("signed by %s, which this gateway does not trust (forged, or tampered with after signing)", signer.Hex()))
	}
	nb, exp := twin.FromMillis(gr.NotBefore), twin.FromMillis(gr.Expiry)
	switch {
	case exp.Sub(nb) > twin.MaxGrantLifetime:
		return g.refuse(gr, now, twin.ReasonTooLong, fmt.Sprintf("valid for %s; at most %s", exp.Sub(nb), twin.MaxGrantLifetime))
	case now.Add(g.cfg.MaxSkew).Before(nb):
		return g.refuse(gr, now, twin.ReasonNotYetValid, fmt.Sprintf("valid from %s, %s ahead of this gateway's clock", nb.Format(time.RFC3339Nano), nb.Sub(now)))
	case now.Add(-g.cfg.MaxSkew).After(exp):
		return g.refuse(gr, now, twin.ReasonExpired, fmt.Sprintf("expired %s ago", now.Sub(exp).Round(time.Millisecond)))
	}
	if reason, detail := g.spendNonce(gr, now); reason != "" {
		return g.refuse(gr, now, reason, detail)
	}
	// A command carried out before, by this grant or another (a node that
	// lost the answer and whose client sent the command again), is not
	// carried out again: its first acknowledgement is the answer.
	if ack, ok := g.cfg.Journal.Executed(gr.Command); ok {
		g.log.Info("command carried out before: answering its acknowledgement", "actuator", gr.Actuator, "command", gr.Command.Hex(), "nonce", gr.Nonce)
		return ack
	}
	if reason, detail := g.checkRevocation(&gr, now); reason != "" {
		return g.refuseVerified(&gr, digest, now, reason, detail)
	}
	if twin.NeedsApproval(a.Risk) {
		approved := false
		for _, ap := range gr.Approvers {
			if ap != gr.Operator {
				approved = true
			}
		}
		if !approved {
			return g.refuseVerified(&gr, digest, now, twin.ReasonMissingApproval, fmt.Sprintf("%s is %s risk and needs a second operator's approval", a.ID, a.Risk))
		}
	}
	d := g.cfg.Drivers[a.ID]
	if reason, detail := g.interlocks(a, d, &gr); reason != "" {
		return g.refuseVerified(&gr, digest, now, reason, detail)
	}
	switch outcome, ack, err := g.cfg.Journal.begin(&gr, digest, g.cfg.Now(), g.cfg.MaxSkew); {
	case err != nil:
		g.log.Error("journal", "err", err)
		return g.refuse(gr, now, twin.ReasonJournalFailed, "the gateway could not record the grant before acting on it")
	case outcome == beginExecuted:
		return ack
	case outcome == beginBusy:
		return g.refuse(gr, now, twin.ReasonInProgress, "another grant of this command is being carried out")
	case outcome == beginExpired:
		return g.refuse(gr, now, twin.ReasonExpired, "expired while it was being verified")
	}
	// The begin's sync let time pass since the checks above: an emergency
	// stop, or another grant's move of this actuator, may have come in
	// between. So the interlocks are checked again under the actuator's
	// lock, which the driver call holds too: for each actuator, checks and
	// move are one step, and a stop waits for the move in flight.
	unlock, err := g.lockActuator(ctx, a.ID)
	if err != nil {
		return g.finishRefused(&gr, g.cfg.Now(), twin.ReasonDriverFailed, "the gateway stopped before the actuator was free", true)
	}
	if reason, detail := g.interlocks(a, d, &gr); reason != "" {
		unlock()
		return g.finishRefused(&gr, g.cfg.Now(), reason, detail, false)
	}
	var r Reading
	if gr.Op == twin.OpStop {
		r, err = d.Stop(ctx)
	} else {
		r, err = d.Move(ctx, twin.FromMicro(gr.ValueMicro))
	}
	unlock()
	ack := twin.Ack{
		Twin: gr.Twin, Actuator: gr.Actuator, Command: gr.Command, Nonce: gr.Nonce, Result: twin.ResultDone,
		ValueMicro: twin.ToMicro(r.Value), TargetMicro: twin.ToMicro(r.Target), At: twin.Millis(g.cfg.Now()),
	}
	if err != nil {
		g.countRefusal(twin.ReasonDriverFailed)
		ack.Result, ack.Reason, ack.Detail = twin.ResultFailed, twin.ReasonDriverFailed, err.Error()
		g.log.Error("driver failed", "actuator", a.ID, "err", err)
	} else {
		g.accepted.Add(1)
	}
	// The acknowledgement carries the new state to the realm; telemetry
	// follows on its own schedule, so a command costs one signature here.
	sa := g.cfg.Signer.SignAck(ack)
	if err := g.cfg.Journal.end(&gr, sa); err != nil {
		// The actuator has moved: the answer stands. The begin is on disk,
		// so a restart still counts the command as carried out.
		g.log.Error("journal: record an outcome", "command", gr.Command.Hex(), "err", err)
	}
	return sa
}

// interlocks are the gateway's own checks of a grant against the
// actuator as it is now: the emergency stop, and the envelope from the
// actuator's real position.
func (g *Gateway) interlocks(a twin.Actuator, d Driver, gr *twin.Grant) (twin.Reason, string) {
	if g.estop.Load() && gr.Op != twin.OpStop {
		return twin.ReasonEmergencyStop, "the local emergency stop is engaged"
	}
	if err := a.CheckEnvelope(gr.Op, gr.ValueMicro, d.Read().Value, true, g.cfg.Horizon); err != nil {
		return twin.ReasonOf(err), err.Error()
	}
	return "", ""
}

// lockActuator waits for the actuator's turn, or for ctx.
func (g *Gateway) lockActuator(ctx context.Context, id string) (unlock func(), err error) {
	turn := g.turns[id]
	select {
	case turn <- struct{}{}:
		return func() { <-turn }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// finishRefused ends a begun grant whose driver was not called. A refusal
// by the interlocks moved nothing, so a later grant of the command may
// run; one that gave up waiting for the actuator (the gateway is
// stopping) is acknowledged failed, as a stop at that moment would have
// left it: a begun grant counts as carried out, and never runs again.
func (g *Gateway) finishRefused(gr *twin.Grant, now time.Time, reason twin.Reason, detail string, failed bool) twin.SignedAck {
	ack := g.refuse(*gr, now, reason, detail)
	if failed {
		a := ack.Ack
		a.Result = twin.ResultFailed
		ack = g.cfg.Signer.SignAck(a)
	}
	if err := g.cfg.Journal.end(gr, ack); err != nil {
		g.log.Error("journal: record an outcome", "command", gr.Command.Hex(), "err", err)
	}
	return ack
}

// refuseVerified refuses a grant whose signature and validity were
// verified, and records the refusal in the journal for status queries.
func (g *Gateway) refuseVerified(gr *twin.Grant, digest common.Hash, now time.Time, reason twin.Reason, detail string) twin.SignedAck {
	ack := g.refuse(*gr, now, reason, detail)
	g.cfg.Journal.refused(gr, digest, now, ack)
	return ack
}

// answerStatus answers a realm node's status query from the journal. A
// query not signed by a trusted realm key, or about another twin, is
// denied, with the reason and nothing else.
func (g *Gateway) answerStatus(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	now := g.cfg.Now()
	st := twin.CommandStatus{Twin: g.cfg.Twin, State: twin.StateDenied, At: twin.Millis(now)}
	var ack *twin.SignedAck
	sq, err := twin.DecodeSignedStatusQuery(m.Data)
	switch {
	case err != nil:
		st.Reason = "malformed query: " + err.Error()
	default:
		q := sq.Query
		st.Command, st.Query = q.Command, q.Query
		signer, serr := sq.Signer()
		switch {
		case serr != nil || !g.trustedAt(signer, now):
			st.Reason = "the query is not signed by a realm key this gateway trusts"
		case q.Twin != g.cfg.Twin:
			st.Reason = "this gateway serves twin " + g.cfg.Twin
		default:
			st.State, ack, st.Since = g.cfg.Journal.status(&q, now, g.cfg.MaxSkew)
		}
	}
	if st.State == twin.StateDenied {
		g.countRefusal(twin.ReasonUntrustedKey)
		g.log.Warn("status query denied", "reason", st.Reason)
	}
	if err := m.Respond(g.cfg.Signer.SignStatus(st, ack).Encode()); err != nil {
		g.log.Warn("answer a status query", "err", err)
	}
}

func (g *Gateway) refuse(gr twin.Grant, now time.Time, reason twin.Reason, detail string) twin.SignedAck {
	g.countRefusal(reason)
	g.log.Info("grant refused", "actuator", gr.Actuator, "reason", reason, "detail", detail, "operator", gr.Operator, "nonce", gr.Nonce)
	ack := twin.Ack{
		Twin: g.cfg.Twin, Actuator: gr.Actuator, Command: gr.Command, Nonce: gr.Nonce,
		Result: twin.ResultRefused, Reason: reason, Detail: detail, At: twin.Millis(now),
	}
	if d, ok := g.cfg.Drivers[gr.Actuator]; ok {
		r := d.Read()
		ack.ValueMicro, ack.TargetMicro = twin.ToMicro(r.Value), twin.ToMicro(r.Target)
	}
	return g.cfg.Signer.SignAck(ack)
}

func (g *Gateway) trustedAt(k common.Address, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.trusted[k]
	return ok && (until.IsZero() || now.Before(until))
}

// checkRevocation fails closed: a feed not heard from within FeedTimeout,
// or not since the connection last reconnected, cannot say whether the
// session, or an agent's delegation, was revoked meanwhile.
func (g *Gateway) checkRevocation(gr *twin.Grant, now time.Time) (twin.Reason, string) {
	var reconnects uint64
	if g.cfg.Conn != nil {
		reconnects = g.cfg.Conn.Stats().Reconnects
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.heartbeat.IsZero():
		return twin.ReasonFeedStale, "no revocation notice received yet"
	case now.Sub(g.heartbeat) > g.cfg.FeedTimeout:
		return twin.ReasonFeedStale, fmt.Sprintf("no revocation notice for %s (limit %s)", now.Sub(g.heartbeat).Round(time.Millisecond), g.cfg.FeedTimeout)
	case reconnects != g.feedReconns:
		return twin.ReasonFeedStale, "the connection dropped since the last revocation notice"
	}
	if !gr.ByAgent() {
		if _, ok := g.revoked[gr.Session]; ok {
			return twin.ReasonSessionRevoked, "the operator's session was revoked"
		}
		return "", ""
	}
	// An agent's grant names its whole chain, so revoking a delegation
	// stops every delegation derived from it.
	for _, d := range gr.Delegations {
		if _, ok := g.revokedAgents[d]; ok {
			return twin.ReasonDelegationRevoked, "delegation " + d + " of agent " + gr.Operator + " was revoked"
		}
	}
	if _, ok := g.revokedAgents[gr.Operator]; ok {
		return twin.ReasonDelegationRevoked, "agent " + gr.Operator + " is suspended"
	}
	if _, ok := g.revokedAgents[gr.Owner]; ok {
		return twin.ReasonDelegationRevoked, "owner " + gr.Owner + " revoked every agent of theirs"
	}
	return "", ""
}

func (g *Gateway) spendNonce(gr twin.Grant, now time.Time) (twin.Reason, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, seen := g.nonces[gr.Nonce]; seen {
		return twin.ReasonReplayed, fmt.Sprintf("nonce %d was already used", gr.Nonce)
	}
	if len(g.nonces) >= maxReplayEntries {
		for n, forget := range g.nonces {
			if now.After(forget) {
				delete(g.nonces, n)
			}
		}
		if len(g.nonces) >= maxReplayEntries {
			return twin.ReasonReplayed, "the replay cache is full; refusing rather than forgetting a nonce"
		}
	}
	g.nonces[gr.Nonce] = twin.FromMillis(gr.Expiry).Add(2 * g.cfg.MaxSkew)
	return "", ""
}

// HandleNotice takes a revocation notice from the feed. A notice from an
// untrusted key, or too old, is ignored. A valid one adds its sessions; only
// a complete notice newer than any seen refreshes the feed, because an
// incremental one says nothing of the notices that may have been lost
// before it.
func (g *Gateway) HandleNotice(data []byte) {
	now := g.cfg.Now()
	sn, err := twin.DecodeSignedNotice(data)
	if err != nil {
		g.countRefusal(twin.ReasonMalformed)
		return
	}
	signer, err := sn.Signer()
	if err != nil || !g.trustedAt(signer, now) {
		g.countRefusal(twin.ReasonUntrustedKey)
		return
	}
	n := sn.Notice
	if at := twin.FromMillis(n.At); now.Sub(at) > g.cfg.FeedTimeout+g.cfg.MaxSkew || at.Sub(now) > g.cfg.MaxSkew {
		// A replayed old heartbeat must not make a dead feed look alive.
		g.countRefusal(twin.ReasonExpired)
		return
	}
	var reconnects uint64
	if g.cfg.Conn != nil {
		reconnects = g.cfg.Conn.Stats().Reconnects
	}
	forget := now.Add(twin.MaxGrantLifetime + 2*g.cfg.MaxSkew + g.cfg.FeedTimeout)
	g.mu.Lock()
	defer g.mu.Unlock()
	// Revocations are taken from any valid notice, even one older than the
	// last: learning of a revocation twice is harmless.
	remember(g.revoked, n.Sessions, forget)
	remember(g.revokedAgents, n.Agents, forget)
	if !n.Complete || n.Seq <= g.noticeSeq[signer] {
		return
	}
	g.noticeSeq[signer] = n.Seq
	forgetPast(g.revoked, now)
	forgetPast(g.revokedAgents, now)
	for k, forgetAt := range g.nonces {
		if now.After(forgetAt) {
			delete(g.nonces, k)
		}
	}
	g.heartbeat, g.feedReconns = now, reconnects
}

// HandleRotation trusts the next realm key of a rotation signed by a key
// trusted now, and retires the previous key after RotationGrace.
func (g *Gateway) HandleRotation(data []byte) error {
	now := g.cfg.Now()
	sr, err := twin.DecodeSignedRotation(data)
	if err != nil {
		return err
	}
	r := sr.Rotation
	if !g.trustedAt(r.Previous, now) {
		return fmt.Errorf("gateway: rotation from %s, which is not trusted", r.Previous.Hex())
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.trusted[r.Next] = time.Time{}
	if r.Next != r.Previous {
		g.trusted[r.Previous] = now.Add(g.cfg.RotationGrace)
	}
	g.log.Info("realm key rotated", "previous", r.Previous.Hex(), "next", r.Next.Hex())
	return nil
}

func (g *Gateway) publishState(actuator string, r Reading) {
	if g.cfg.Conn == nil {
		return
	}
	g.mu.Lock()
	g.telemetry++
	seq := g.telemetry
	g.mu.Unlock()
	st := g.cfg.Signer.SignTelemetry(twin.Telemetry{
		Twin: g.cfg.Twin, Actuator: actuator, ValueMicro: twin.ToMicro(r.Value), TargetMicro: twin.ToMicro(r.Target),
		Seq: seq, At: twin.Millis(g.cfg.Now()),
	})
	if err := g.cfg.Conn.Publish(twin.StateSubject(g.cfg.Prefix, g.cfg.Twin, actuator), st.Encode()); err != nil {
		g.log.Debug("publish state", "err", err)
	}
}

func (g *Gateway) publishTelemetry(ctx context.Context) {
	defer close(g.done)
	t := time.NewTicker(g.cfg.TelemetryEvery)
	defer t.Stop()
	for {
		for id, d := range g.cfg.Drivers {
			g.publishState(id, d.Read())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// remember keeps each id revoked until at least forget.
func remember(revoked map[string]time.Time, ids []string, forget time.Time) {
	for _, id := range ids {
		if old, ok := revoked[id]; !ok || old.Before(forget) {
			revoked[id] = forget
		}
	}
}

// forgetPast drops what no grant still valid can name.
func forgetPast(revoked map[string]time.Time, now time.Time) {
	for id, until := range revoked {
		if now.After(until) {
			delete(revoked, id)
		}
	}
}
