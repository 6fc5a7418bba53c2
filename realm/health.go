package realm

import (
	"context"
	"net/http"
	"time"

	"github.com/zerorealm/zerorealm/internal/buildinfo"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Readiness is probed in the background, not per request: a load balancer
// polling /readyz from several places must not multiply the load on
// JetStream, and a probe of a stream without a leader waits for its
// timeout, which a health endpoint must not. Once a second, with a budget
// under a second, /readyz turns within two seconds of a change.
const (
	readyProbeEvery   = time.Second
	readyProbeTimeout = 750 * time.Millisecond
)

// The readiness checks, in the order they run; also the label values of
// zerorealm_ready_check.
const (
	checkNATS      = "nats"      // the NATS connection is up
	checkJetStream = "jetstream" // JetStream answers account info
	checkLeaders   = "leaders"   // every stream and bucket this node writes has a leader
	checkDisk      = "disk"      // embedded store: free space under the data dir above MinFreeDisk, JetStream taking writes
)

// defaultMinFreeDisk is Config.MinFreeDisk's default: room for JetStream
// to finish what it is writing and for an operator to react.
const defaultMinFreeDisk = 64 << 20

var readyChecks = []string{checkNATS, checkJetStream, checkLeaders, checkDisk}

// readiness is what one probe found.
type readiness struct {
	ready  bool
	reason string          // why not, for operators; never names a stream
	checks map[string]bool // check -> passed (a check not run after a failure is false)
	// diskFree is the free space under the data dir in bytes, -1 when not
	// measured (a node on an external cluster, or an unsupported system).
	diskFree int64
}

// probeReadiness runs the checks once.
func (r *Realm) probeReadiness(ctx context.Context) readiness {
	ctx, cancel := context.WithTimeout(ctx, readyProbeTimeout)
	defer cancel()
	rd := readiness{checks: map[string]bool{}, diskFree: -1}
	h := r.store.Check(ctx)
	rd.checks[checkNATS] = h.Connected
	rd.checks[checkJetStream] = h.JetStream
	rd.checks[checkLeaders] = h.Leaders
	switch {
	case !h.Connected:
		rd.reason = "NATS connection " + r.nc.Status().String()
	case !h.JetStream:
		rd.reason = "JetStream does not answer"
	case !h.Leaders:
		rd.reason = "a stream or bucket this node writes has no leader (election or lost quorum)"
	}
	rd.checks[checkDisk] = true
	if r.embedded != nil {
		// The embedded server's disk guard measures the space and sees
		// a JetStream broken by a failed write; the store refuses
		// writes on the same finding (Config.WriteGate).
		d := r.embedded.Disk()
		rd.diskFree = d.Free
		if why := d.Reason(); why != "" {
			rd.checks[checkDisk] = false
			if rd.reason == "" {
				rd.reason = "the embedded store's disk is full: " + why
			}
		}
	}
	rd.ready = rd.reason == ""
	if !rd.ready && h.Err != nil {
		// The internal detail (which stream) goes to the log only.
		r.log.Debug("readiness probe failed", "reason", rd.reason, "err", h.Err)
	}
	return rd
}

// runReadiness probes once a second until ctx ends and logs each change.
func (r *Realm) runReadiness(ctx context.Context) {
	t := time.NewTicker(readyProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.recordReadiness(ctx, r.probeReadiness(ctx))
	}
}

func (r *Realm) recordReadiness(ctx context.Context, rd readiness) {
	prev := r.readiness.Swap(&rd)
	if ctx.Err() != nil || prev == nil || prev.ready == rd.ready && prev.reason == rd.reason {
		return
	}
	if rd.ready {
		r.log.Info("node ready again: it can decide and write", "was", prev.reason)
	} else {
		r.log.Warn("node not ready: it cannot decide and write now", "reason", rd.reason)
	}
}

// currentReadiness is the last probe's result, or the start-up state.
func (r *Realm) currentReadiness() readiness {
	if !r.ready.Load() {
		return readiness{reason: *r.notReady.Load(), checks: map[string]bool{}, diskFree: -1}
	}
	if rd := r.readiness.Load(); rd != nil {
		return *rd
	}
	return readiness{reason: "first readiness probe pending", checks: map[string]bool{}, diskFree: -1}
}

// handleLivez answers 200 while the process serves HTTP at all: a
// supervisor restarts a node only when this fails, never for an outage of
// NATS, which a restart does not cure.
func (r *Realm) handleLivez(w http.ResponseWriter, _ *http.Request) {
	edge.WriteJSON(w, http.StatusOK, map[string]any{"status": "alive", "node": *r.servedNode.Load()})
}

// handleReadyz answers 200 when this node can decide and write now, and
// 503 with the reason when it cannot (starting, stopping, or a failed
// check), so a load balancer sends traffic elsewhere.
func (r *Realm) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	rd := r.currentReadiness()
	body := map[string]any{"node": *r.servedNode.Load(), "checks": rd.checks}
	if !rd.ready {
		body["status"] = "not ready"
		body["reason"] = rd.reason
		w.Header().Set("Retry-After", "1")
		edge.WriteJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	body["status"] = "ready"
	edge.WriteJSON(w, http.StatusOK, body)
}

// handleHealth is the first health endpoint, kept for what already polls
// it: the same verdict as /readyz, with the node's version, and its scenes
// and replica count once ready.
func (r *Realm) handleHealth(w http.ResponseWriter, _ *http.Request) {
	body := map[string]any{"node": *r.servedNode.Load(), "version": buildinfo.Get().Version}
	rd := r.currentReadiness()
	if !rd.ready {
		body["status"] = rd.reason
		body["reason"] = rd.reason
		w.Header().Set("Retry-After", "1")
		edge.WriteJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	body["status"] = "ok"
	body["scenes"] = len(r.catalog.Scenes())
	body["replicas"] = r.store.Replicas()
	edge.WriteJSON(w, http.StatusOK, body)
}
