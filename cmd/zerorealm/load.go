package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

type loadFlags struct {
	url           string
	avatars       int
	hz            float64
	duration      time.Duration
	transport     string
	batch         int
	enrollTimeout time.Duration
	workers       int
	seed          int64
	scene         string
	delaySample   int
	realmPID      int
	gomaxprocs    int
	posesOnly     bool
	slowReaders   int
	pprofListen   string
	ramp          time.Duration
}

func newLoadCommand() *cobra.Command {
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Stream synthetic avatars' motion to a realm and measure it",
		Long: `Sign in N synthetic avatars with passkeys (a software authenticator), stream
each one's synthetic head and hand motion to the realm over WebSocket or
WebRTC, wait until the realm has enrolled them, then measure for --duration:
frames accepted per second, trust-update latency (from sending the newest
frame of a window to receiving the realm's score for it), and the realm's
CPU and memory per avatar, read from its /metrics. An avatar the realm
refuses for a while (node-busy) waits its retry_after and streams again;
one told not-enrolled, its sign-in too old for the realm to enroll on,
steps up with its passkey, as a headset's wearer would be asked to.

With --scene every avatar also joins that scene once connected, and the
run measures pose fan-out: the other members' poses delivered per second,
and their delay, from sending the frame whose head became a pose to
receiving that pose (every avatar lives in this process, so the sender's
send time is looked up by the exact head position the pose carries). To
leave the cores to the realm, poses messages are not parsed: every one is
counted by scanning, and those received by one avatar in --delay-sample
are scanned for their avatar ids and head positions to be timed.

The realm's CPU and memory come from /proc/<--realm-pid>/ when given (the
realm on this machine), otherwise from its /metrics.

The realm must accept the load tool's origin: run it with the URL given here.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			if f.gomaxprocs > 0 {
				runtime.GOMAXPROCS(f.gomaxprocs)
			}
			if f.pprofListen != "" {
				stopProfiling, err := startProfiling(f.pprofListen, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
				if err != nil {
					return err
				}
				defer stopProfiling()
			}
			run := &loadRun{f: f, out: cmd.OutOrStdout(), progress: progressWriter(cmd.ErrOrStderr()), warn: cmd.ErrOrStderr(),
				hc: &http.Client{Timeout: 30 * time.Second}}
			return run.run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "http://localhost:8080", "the realm's base URL")
	fl.IntVar(&f.avatars, "avatars", 100, "synthetic avatars to sign in and stream")
	fl.Float64Var(&f.hz, "hz", 72, "frames per second per avatar")
	fl.DurationVar(&f.duration, "duration", 30*time.Second, "how long to measure, after enrollment")
	fl.StringVar(&f.transport, "transport", "ws", "ws (binary WebSocket messages) or webrtc (data channel)")
	fl.IntVar(&f.batch, "batch", 4, fmt.Sprintf("frames per message (1 to %d)", vr.MaxFramesPerMessage))
	fl.DurationVar(&f.enrollTimeout, "enroll-timeout", 3*time.Minute, "longest wait for the realm to enroll every avatar before measuring")
	fl.DurationVar(&f.ramp, "ramp", 0, "start the avatars' motion evenly over this long, as people arrive, instead of all at once (their enrollments finish spread over it too)")
	fl.IntVar(&f.workers, "workers", 8, "concurrent sign-ins and connections")
	fl.Int64Var(&f.seed, "seed", 1, "seed of the synthetic persons (avatar i is person seed+i)")
	fl.StringVar(&f.scene, "scene", "", "scene every avatar joins, to measure pose fan-out (default none)")
	fl.IntVar(&f.delaySample, "delay-sample", 10, "with --scene, time the poses received by one avatar in this many (1: every avatar's)")
	fl.IntVar(&f.realmPID, "realm-pid", 0, "process id of the realm, to read its CPU and memory from /proc (default: its /metrics)")
	fl.BoolVar(&f.posesOnly, "poses-only", false, "with --scene, send each message's newest pose as a JSON pose message instead of the frames, as clients without a motion stream do: measures the fan-out without the realm's biometrics")
	fl.IntVar(&f.slowReaders, "slow-readers", 0, "with --scene, this many of the avatars read at most 5 messages a second, to see the realm decimate them and no one else")
	fl.StringVar(&f.pprofListen, "pprof-listen", "", "serve the load tool's own Go runtime profiles (/debug/pprof/) on this address, e.g. localhost:6061 (empty: off), to see what generating the load costs")
	fl.IntVar(&f.gomaxprocs, "gomaxprocs", 0, "cores the load tool may use at once (default: Go's, every core it may run on)")
	return cmd
}

func (f *loadFlags) validate() error {
	switch {
	case f.avatars < 1:
		return usagef("--avatars %d: want at least 1", f.avatars)
	case f.hz < 1 || f.hz > 500:
		return usagef("--hz %g: want 1 to 500", f.hz)
	case f.duration < time.Second:
		return usagef("--duration %s: want at least 1s", f.duration)
	case f.transport != "ws" && f.transport != "webrtc":
		return usagef("--transport %q: want ws or webrtc", f.transport)
	case f.batch < 1 || f.batch > vr.MaxFramesPerMessage:
		return usagef("--batch %d: want 1 to %d", f.batch, vr.MaxFramesPerMessage)
	case f.workers < 1:
		return usagef("--workers %d: want at least 1", f.workers)
	case f.ramp < 0 || f.ramp > 0 && f.ramp >= f.enrollTimeout:
		return usagef("--ramp %s: want 0 or more, and shorter than --enroll-timeout (%s)", f.ramp, f.enrollTimeout)
	case len(f.scene) > 64:
		return usagef("--scene %.20q…: a scene id is at most 64 bytes", f.scene)
	case f.posesOnly && f.scene == "":
		return usagef("--poses-only needs --scene")
	case f.posesOnly && f.hz/float64(f.batch) > 40:
		return usagef("--poses-only at %g messages a second: the realm takes at most 50 control messages a second; lower --hz or raise --batch", f.hz/float64(f.batch))
	case f.slowReaders < 0 || f.slowReaders >= f.avatars:
		return usagef("--slow-readers %d: want 0 to %d, fewer than the avatars", f.slowReaders, f.avatars-1)
	case f.slowReaders > 0 && f.scene == "":
		return usagef("--slow-readers needs --scene")
	case f.delaySample < 1:
		return usagef("--delay-sample %d: want at least 1", f.delaySample)
	case f.realmPID < 0:
		return usagef("--realm-pid %d: want a process id", f.realmPID)
	case f.gomaxprocs < 0:
		return usagef("--gomaxprocs %d: want 0 (Go's default) or more", f.gomaxprocs)
	}
	f.url = strings.TrimRight(f.url, "/")
	return nil
}

// loadRun is one run of the load tool.
type loadRun struct {
	f        loadFlags
	out      io.Writer
	progress io.Writer // nil unless stderr is a terminal
	warn     io.Writer // stderr: what the operator should change
	// ceremonyWarning is given once: the first 429 that says the realm
	// limits passkey ceremonies per address.
	ceremonyWarning sync.Once
	hc              *http.Client
	avatars         []*loadAvatar

	measuring        atomic.Bool
	joined           atomic.Int64
	streamingAvatars int
	latMu            sync.Mutex
	latencies        []time.Duration
	enrolled         atomic.Int64
	// busy counts the node-busy refusals of new streams, and busyAvatars
	// the avatars refused at least once; shed counts the open streams the
	// node closed with node-busy, and shedAvatars the avatars shed at
	// least once.
	busy, busyAvatars atomic.Int64
	shed, shedAvatars atomic.Int64
	// consented counts the step-ups of avatars that were told
	// not-enrolled while streaming, and consentFailed those that failed.
	consented, consentFailed atomic.Int64
	// ctx is the run's, for what a callback of the SDK starts (a step-up).
	ctx context.Context

	byAvatar map[string]*loadAvatar // by avatar id; written before streaming
	fanout   poseFanout
	// clock times the waits a busy node asks for (nil: the real one), so
	// that a test moves past a 15 s retry_after instead of sleeping it.
	clock clock.Clock
}

// loadAvatar is one synthetic avatar: its session, connection and motion.
type loadAvatar struct {
	i      int
	token  string
	client *vr.Client
	gen    *synth.Generator
	gazes  [vr.MaxFramesPerMessage]vr.Gaze // the gazes of the message being made (vrFrame)
	// made and madeGaze hold the frame the generator made last, before
	// vrFrame copies it into the message.
	made     biometrics.Frame
	madeGaze biometrics.Gaze
	// sentAt holds when each recent frame left, by Seq modulo its length,
	// so a score naming a frame can be timed.
	sentAt   [4096]atomic.Int64
	state    atomic.Pointer[string]
	enrolled atomic.Bool
	// heads holds the head of the newest frame of each recent message,
	// which is the one the realm makes the avatar's pose, and when it left.
	heads   [headHistory]sentHead
	headSeq atomic.Uint64 // messages recorded in heads
	// timesPoses marks one avatar in --delay-sample, whose received poses
	// are timed.
	timesPoses bool
	// slow marks one of --slow-readers.
	slow bool
	// posesSent counts the JSON pose messages of --poses-only.
	posesSent atomic.Uint64
	// pausedUntil (unix ns): a node that refused the avatar's stream said
	// when to try again; until then it sends nothing. refused marks an
	// avatar refused at least once, admitted one whose stream opened,
	// wasShed one whose open stream the node closed at least once.
	pausedUntil                atomic.Int64
	refused, admitted, wasShed atomic.Bool
	// streaming marks an open stream: set by its status, which only an
	// open stream is sent, and cleared by a node-busy, which closes it or
	// refuses to open it. A node-busy to a streaming avatar is a shed.
	streaming atomic.Bool
	// passkey is the avatar's software authenticator, for its step-ups;
	// assertedAt (unix ns) is when it last asserted (its sign-up or a
	// step-up), and consenting marks a step-up under way.
	passkey    *webauthntest.Authenticator
	assertedAt atomic.Int64
	consenting atomic.Bool
}

// consentAgainAfter is how long after its last passkey assertion an avatar
// the realm tells not-enrolled steps up again. The realm enrolls an
// avatar without a template on an assertion of the last 2 minutes; one
// whose stream could not start in time (refused or shed by a busy node)
// never enrolls without a new one, which is what a headset's app asks its
// wearer for. Within this time a status saying not-enrolled is one sent
// before the enrollment began.
const consentAgainAfter = 30 * time.Second

// refusedOnly counts the avatars the node refused and never let stream.
func (r *loadRun) refusedOnly() int64 {
	var n int64
	for _, a := range r.avatars {
		if a.refused.Load() && !a.admitted.Load() {
			n++
		}
	}
	return n
}

// streamStatus notes the status of the avatar's open stream: only an open
// stream is sent one.
func (r *loadRun) streamStatus(a *loadAvatar, s vr.Status) {
	a.admitted.Store(true)
	a.streaming.Store(true)
	if s.Enrollment == "enrolled" && !a.enrolled.Swap(true) {
		r.enrolled.Add(1)
	}
	if s.Enrollment == "not-enrolled" {
		r.consentAgain(a)
	}
}

// consentAgain steps the avatar up with its passkey, on a goroutine of its
// own, when its stream is told not-enrolled long enough after its last
// assertion (consentAgainAfter) and no step-up is under way: the realm
// starts the enrollment on it.
func (r *loadRun) consentAgain(a *loadAvatar) {
	now := clock.Or(r.clock).Now()
	if a.passkey == nil || r.ctx == nil || now.Sub(time.Unix(0, a.assertedAt.Load())) < consentAgainAfter || a.consenting.Swap(true) {
		return
	}
	go func() {
		defer a.consenting.Store(false)
		if err := r.stepUp(r.ctx, a); err != nil {
			r.consentFailed.Add(1)
			if r.warn != nil && r.ctx.Err() == nil {
				fmt.Fprintf(r.warn, "zerorealm load: avatar %d: step-up to enroll: %v\n", a.i, err)
			}
			return
		}
		r.consented.Add(1)
	}()
}

// stepUp makes a user-verified passkey assertion for the avatar's session
// (POST /v1/webauthn/stepup/begin and finish, bound to no action).
func (r *loadRun) stepUp(ctx context.Context, a *loadAvatar) error {
	var out struct {
		Verified bool `json:"verified"`
	}
	if err := r.ceremony(ctx, a.token, "stepup", map[string]string{}, a.passkey.Assert, &out); err != nil {
		return err
	}
	if !out.Verified {
		return errors.New("the realm answered the step-up without verifying it")
	}
	a.assertedAt.Store(clock.Or(r.clock).Now().UnixNano())
	return nil
}

// ceremony runs one passkey ceremony of kind (register, stepup) for the
// session of token ("" for none): begin with body, answer the realm's
// options with the software authenticator, finish into out.
func (r *loadRun) ceremony(ctx context.Context, token, kind string, body any, answer func(options []byte, origin string) ([]byte, error), out any) error {
	var begin map[string]json.RawMessage
	if err := r.postAs(ctx, token, "/v1/webauthn/"+kind+"/begin", body, &begin); err != nil {
		return err
	}
	opts, _ := json.Marshal(begin)
	credential, err := answer(opts, r.f.url)
	if err != nil {
		return fmt.Errorf("software authenticator: %w", err)
	}
	var id string
	_ = json.Unmarshal(begin["ceremony_id"], &id)
	return r.postAs(ctx, token, "/v1/webauthn/"+kind+"/finish", map[string]any{"ceremony_id": id, "credential": json.RawMessage(credential)}, out)
}

// nodeBusy notes the node's refusal of the avatar's stream: the avatar
// stops sending until the refusal's retry time, then tries again. A
// refusal to an avatar whose stream was open is the node shedding it; one
// that arrives while the avatar already waits repeats the refusal it
// waits on (frames it sent before that one arrived), and is not counted
// again.
func (r *loadRun) nodeBusy(a *loadAvatar, e *vr.RefusalError) {
	now := clock.Or(r.clock).Now()
	switch {
	case a.streaming.Swap(false):
		r.shed.Add(1)
		if !a.wasShed.Swap(true) {
			r.shedAvatars.Add(1)
		}
	case now.UnixNano() < a.pausedUntil.Load():
	default:
		r.busy.Add(1)
		if !a.refused.Swap(true) {
			r.busyAvatars.Add(1)
		}
	}
	a.pausedUntil.Store(now.Add(max(e.RetryAfter, time.Second)).UnixNano())
}

func (r *loadRun) run(ctx context.Context) error {
	r.ctx = ctx
	if err := r.checkHealth(ctx); err != nil {
		return err
	}
	before, err := r.scrape(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "zerorealm load: %d avatars over %s at %g Hz, %d frames a message, against %s\n",
		r.f.avatars, r.transportName(), r.f.hz, r.f.batch, r.f.url)

	var runID [3]byte
	_, _ = rand.Read(runID[:])
	start := time.Now()
	r.avatars = make([]*loadAvatar, r.f.avatars)
	err = r.parallel(ctx, "sign-in", func(ctx context.Context, i int) error {
		// The slow readers are the last avatars; their poses are not timed,
		// since their delay is their own.
		slow := i >= r.f.avatars-r.f.slowReaders
		a, err := r.signUpAvatar(ctx, i, fmt.Sprintf("load-%s-%d", hex.EncodeToString(runID[:]), i))
		if err != nil {
			return err
		}
		a.slow, a.timesPoses = slow, !slow && i%r.f.delaySample == 0
		r.avatars[i] = a
		return nil
	})
	if err != nil {
		return err
	}
	signIn := time.Since(start)
	fmt.Fprintf(r.out, "sign-in        %d avatars in %s (%.0f/s)\n", r.f.avatars, signIn.Round(time.Millisecond), float64(r.f.avatars)/signIn.Seconds())

	idle, err := r.scrape(ctx)
	if err != nil {
		return err
	}
	start = time.Now()
	err = r.parallel(ctx, "connect", func(ctx context.Context, i int) error { return r.connect(ctx, r.avatars[i]) })
	defer func() {
		for _, a := range r.avatars {
			if a != nil && a.client != nil {
				a.client.Close()
			}
		}
	}()
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "connect        %d in %s\n", r.f.avatars, time.Since(start).Round(time.Millisecond))
	if r.f.scene != "" {
		if err := r.joinScene(ctx); err != nil {
			return err
		}
	}

	streamCtx, stopStreaming := context.WithCancel(ctx)
	defer stopStreaming()
	var streaming sync.WaitGroup
	for i, a := range r.avatars {
		streaming.Add(1)
		go func() {
			defer streaming.Done()
			// With --ramp, avatar i puts its headset on i/N of the way
			// through it, as people arrive at a realm over minutes; without,
			// every avatar starts (and enrolls) at once.
			if delay := r.f.ramp * time.Duration(i) / time.Duration(len(r.avatars)); delay > 0 {
				select {
				case <-streamCtx.Done():
					return
				case <-time.After(delay):
				}
			}
			r.stream(streamCtx, a)
		}()
	}

	// Enrollment: the realm collects a first template from each avatar's
	// motion before it scores any; the measurement starts after.
	start = time.Now()
	enrollDeadline := start.Add(r.f.enrollTimeout)
	if r.f.posesOnly {
		enrollDeadline = start // no frames, no enrollment
	}
	// An avatar the node refused to stream (node-busy) and has not let in
	// since is not waited for: it keeps retrying while the run measures.
	for r.enrolled.Load()+r.refusedOnly() < int64(r.f.avatars) && time.Now().Before(enrollDeadline) {
		r.showProgress(fmt.Sprintf("enrolling: %d/%d enrolled after %s", r.enrolled.Load(), r.f.avatars, time.Since(start).Round(time.Second)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	fmt.Fprintf(r.out, "enrollment     %d/%d enrolled after %s\n", r.enrolled.Load(), r.f.avatars, time.Since(start).Round(time.Second))

	first, err := r.scrape(ctx)
	if err != nil {
		return err
	}
	sentBefore := r.clientStats()
	perAvatarBefore := r.avatarMessages()
	realmBefore := r.realmProc()
	r.measuring.Store(true)
	start = time.Now()
	cpuBefore := processCPU()
	for elapsed := time.Duration(0); elapsed < r.f.duration; elapsed = time.Since(start) {
		r.showProgress(r.bar(elapsed, sentBefore))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Second, r.f.duration-elapsed)):
		}
	}
	r.measuring.Store(false)
	measured := time.Since(start)
	loadCPU := processCPU() - cpuBefore
	realmAfter := r.realmProc()
	r.streamingAvatars = r.countStreaming(perAvatarBefore)
	last, err := r.scrape(ctx)
	if err != nil {
		return err
	}
	sentAfter := r.clientStats()
	r.showProgress("")
	stopStreaming()
	streaming.Wait()
	r.report(measured, before, idle, first, last, sentBefore, sentAfter, loadCPU, realmBefore, realmAfter)
	return nil
}

// signUpAvatar registers avatar i under name and gives it its synthetic
// person's motion.
func (r *loadRun) signUpAvatar(ctx context.Context, i int, name string) (*loadAvatar, error) {
	token, passkey, err := r.signUp(ctx, name)
	if err != nil {
		return nil, err
	}
	a := &loadAvatar{i: i, token: token, passkey: passkey, gen: synth.NewPerson(r.f.seed + int64(i)).Session(0)}
	a.assertedAt.Store(clock.Or(r.clock).Now().UnixNano())
	// One integration step a frame: the load tool moves every avatar on
	// the cores the realm needs.
	a.gen.SetMaxStep(time.Duration(float64(time.Second) / r.f.hz))
	return a, nil
}

func (r *loadRun) transportName() string {
	if r.f.transport == "webrtc" {
		return "WebRTC data channels"
	}
	return "WebSocket"
}

// parallel runs fn for every avatar on --workers goroutines, with a
// progress line; the first error stops it.
func (r *loadRun) parallel(ctx context.Context, what string, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := atomic.Int64{}
	done := atomic.Int64{}
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(r.f.workers, r.f.avatars) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= r.f.avatars || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%s of avatar %d: %w", what, i, err); cancel() })
					return
				}
				done.Add(1)
			}
		}()
	}
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				r.showProgress(fmt.Sprintf("%s: %d/%d", what, done.Load(), r.f.avatars))
			}
		}
	}()
	wg.Wait()
	close(stop)
	r.showProgress("")
	return firstErr
}

func (r *loadRun) checkHealth(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.f.url+"/healthz", nil)
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("the realm at %s does not answer: %w (start one with: zerorealm serve --listen %s)", r.f.url, err, strings.TrimPrefix(strings.TrimPrefix(r.f.url, "http://"), "https://"))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the realm at %s is not ready: /healthz answered %s", r.f.url, resp.Status)
	}
	return nil
}

// signUp registers a new avatar with a fresh software passkey; the realm
// answers with the session. The passkey is kept for the avatar's
// step-ups.
func (r *loadRun) signUp(ctx context.Context, name string) (string, *webauthntest.Authenticator, error) {
	passkey := webauthntest.New()
	var out struct {
		Token string `json:"token"`
	}
	if err := r.ceremony(ctx, "", "register", map[string]string{"name": name, "display_name": name}, passkey.Register, &out); err != nil {
		return "", nil, err
	}
	if out.Token == "" {
		return "", nil, errors.New("the realm answered the registration without a session token")
	}
	return out.Token, passkey, nil
}

// postAs sends a JSON request for the session of token ("" for none). A
// 429 is waited out as its Retry-After says: the realm limits passkey
// ceremonies per client address, and every synthetic avatar comes from
// this one.
func (r *loadRun) postAs(ctx context.Context, token, path string, body, out any) error {
	data, _ := json.Marshal(body)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.f.url+path, bytes.NewReader(data))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", r.f.url)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := r.hc.Do(req)
		if err != nil {
			return err
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if wait, err := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode == http.StatusTooManyRequests && err == nil && wait > 0 {
			if bytes.Contains(raw, []byte(ceremonyRefusal)) {
				r.warnCeremonyRate()
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(wait) * time.Second):
				continue
			}
		}
		if resp.StatusCode >= 300 {
			return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(raw))
		}
		return json.Unmarshal(raw, out)
	}
}

// ceremonyRefusal is what the realm's 429 says when one client address
// begins and finishes more passkey ceremonies than --ceremony-rate lets it
// (realm/internal/identity).
const ceremonyRefusal = "too many passkey ceremonies from your address"

// Passkey ceremonies a realm takes from one address by default: a burst,
// then a rate (serve's --ceremony-burst and --ceremony-rate).
const (
	defaultCeremonyBurst = 50
	defaultCeremonyRate  = 5.0
)

// warnCeremonyRate says, once, that the realm's per-address ceremony limit
// is pacing the sign-ins, how long that takes at the realm's default, and
// which flag lifts it. The run goes on, waiting out each Retry-After.
func (r *loadRun) warnCeremonyRate() {
	r.ceremonyWarning.Do(func() {
		if r.warn == nil {
			return
		}
		calls := 2 * r.f.avatars // a sign-up is a begin and a finish
		wait := time.Duration(float64(max(0, calls-defaultCeremonyBurst)) / defaultCeremonyRate * float64(time.Second))
		fmt.Fprintf(r.warn, "zerorealm load: warning: the realm refuses passkey ceremonies beyond its per-address rate (429 %q), and every avatar signs in from this one address: "+
			"at the realm's default --ceremony-rate %g the %d sign-ins take about %s. Start the realm with --ceremony-rate -1 (ZR_CEREMONY_RATE=-1) for a load run; waiting out the limit meanwhile.\n",
			ceremonyRefusal, defaultCeremonyRate, r.f.avatars, wait.Round(time.Second))
	})
}

func (r *loadRun) connect(ctx context.Context, a *loadAvatar) error {
	transport := vr.WebSocket
	if r.f.transport == "webrtc" {
		transport = vr.WebRTC
	}
	for {
		err := r.dial(ctx, a, transport)
		var busy *vr.RefusalError
		if !errors.As(err, &busy) || busy.Code != vr.CodeNodeBusy {
			return err
		}
		// A WebRTC offer the node refused: dial again after its retry time.
		// The refusal is counted already: the SDK handed it to OnRefusal
		// (dial's nodeBusy) before Dial returned it.
		c := clock.Or(r.clock)
		retry := c.NewTimer(time.Unix(0, a.pausedUntil.Load()).Sub(c.Now()))
		select {
		case <-ctx.Done():
			retry.Stop()
			return ctx.Err()
		case <-retry.C():
		}
	}
}

// dial opens the avatar's connection over transport.
func (r *loadRun) dial(ctx context.Context, a *loadAvatar, transport vr.Transport) error {
	client, err := vr.Dial(ctx, vr.Config{
		URL: r.f.url, Token: a.token, Transport: transport,
		OnTrust: func(t vr.Trust) { a.setState(t.State) },
		OnScore: func(s vr.Score) {
			a.setState(s.State)
			sent := a.sentAt[s.Seq%uint32(len(a.sentAt))].Load()
			if sent == 0 || !r.measuring.Load() {
				return
			}
			lat := time.Duration(time.Now().UnixNano() - sent)
			r.latMu.Lock()
			r.latencies = append(r.latencies, lat)
			r.latMu.Unlock()
		},
		OnStatus:   func(s vr.Status) { r.streamStatus(a, s) },
		OnRawPoses: func(data []byte) { r.receiveRawPoses(a, data) },
		OnRefusal: func(e *vr.RefusalError) {
			if e.Code == vr.CodeNodeBusy {
				r.nodeBusy(a, e)
			}
		},
	})
	if err != nil {
		return err
	}
	a.client = client
	return nil
}

func (a *loadAvatar) setState(s string) { a.state.Store(&s) }

// stream sends the avatar's synthetic motion in real time until ctx ends.
// Each tick sends every frame due by the wall clock, so the device clock
// keeps pace with real time even when a busy machine delays the ticks (a
// device clock that falls behind its arrival times is what a replay looks
// like, and the realm says so). More than a second behind, it skips ahead,
// as a headset that stalled would.
func (r *loadRun) stream(ctx context.Context, a *loadAvatar) {
	dt := time.Duration(float64(time.Second) / r.f.hz)
	tick := time.NewTicker(time.Duration(r.f.batch) * dt)
	defer tick.Stop()
	frames := make([]vr.Frame, 0, vr.MaxFramesPerMessage)
	var seq uint32
	start := time.Now()
	var generated int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.client.Done():
			return
		case <-tick.C:
		}
		if clock.Or(r.clock).Now().UnixNano() < a.pausedUntil.Load() {
			continue // refused: the motion resumes, skipping ahead, at the retry time
		}
		due := int64(time.Since(start).Seconds()*r.f.hz) - generated
		if behind := due - int64(r.f.hz); behind > 0 {
			a.gen.SetTime(a.gen.TimeUS()+uint64(behind)*uint64(dt.Microseconds()), seq)
			generated += behind
			due -= behind
		}
		for due > 0 {
			n := int(min(due, int64(max(r.f.batch, min(int(due), vr.MaxFramesPerMessage)))))
			frames = a.nextFrames(frames[:n], dt, seq)
			now := time.Now().UnixNano()
			for range frames {
				a.sentAt[seq%uint32(len(a.sentAt))].Store(now)
				seq++
			}
			if r.f.scene != "" {
				a.recordHead(frames[n-1].Head, now)
			}
			if newest := frames[n-1]; r.f.posesOnly && !newest.Head.Tracked {
				// A pose needs a tracked head; the next message has one.
			} else if r.f.posesOnly {
				if err := a.client.SendPose(vr.BodyPose{Head: newest.Head, Left: newest.Left, Right: newest.Right}); err != nil {
					return
				}
				a.posesSent.Add(1)
			} else if err := a.client.Send(frames); err != nil {
				return
			}
			due -= int64(n)
			generated += int64(n)
		}
	}
}

// nextFrames fills frames with the avatar's next synthetic frames, dt
// apart, numbered from seq: the motion of one message. Each frame is
// made in the avatar's own place and copied into the SDK's type at once,
// so that the motion costs no allocation.
func (a *loadAvatar) nextFrames(frames []vr.Frame, dt time.Duration, seq uint32) []vr.Frame {
	for i := range frames {
		a.gen.NextInto(dt, &a.made, &a.madeGaze)
		frames[i] = vrFrame(a.made, &a.gazes[i])
		frames[i].Seq = seq + uint32(i)
	}
	return frames
}

// vrFrame carries a synthetic frame into the SDK's own frame type: the SDK
// shares the wire format, not the server's types. A gaze goes into gaze,
// the avatar's own for the frame's place in a message, instead of a new
// allocation per frame: a message is encoded before the next is made.
func vrFrame(f biometrics.Frame, gaze *vr.Gaze) vr.Frame {
	pose := func(p biometrics.Pose) vr.Pose { return vr.Pose{Pos: p.Pos, Rot: p.Rot, Tracked: p.Tracked} }
	out := vr.Frame{TimeUS: f.TimeUS, Seq: f.Seq, Head: pose(f.Head), Left: pose(f.Left), Right: pose(f.Right), HeartRate: f.HeartRate}
	if f.Gaze != nil {
		*gaze = vr.Gaze{Dir: f.Gaze.Dir, PupilMM: f.Gaze.PupilMM}
		out.Gaze = gaze
	}
	return out
}

func (r *loadRun) clientStats() vr.Stats {
	var s vr.Stats
	for _, a := range r.avatars {
		if a == nil || a.client == nil {
			continue
		}
		st := a.client.Stats()
		s.Messages += st.Messages
		s.Frames += st.Frames
		s.Dropped += st.Dropped
	}
	return s
}

func (r *loadRun) bar(elapsed time.Duration, before vr.Stats) string {
	const width = 30
	done := min(width, int(float64(width)*elapsed.Seconds()/r.f.duration.Seconds()))
	rate := 0.0
	if elapsed > 0 {
		rate = float64(r.clientStats().Frames-before.Frames) / elapsed.Seconds()
	}
	return fmt.Sprintf("measuring [%s%s] %s/%s  %s frames/s sent", strings.Repeat("=", done), strings.Repeat(" ", width-done),
		elapsed.Round(time.Second), r.f.duration, thousands(rate))
}

func (r *loadRun) showProgress(line string) {
	if r.progress == nil {
		return
	}
	fmt.Fprintf(r.progress, "\r\033[K%s", line)
}

// progressWriter is stderr when it is a terminal, nil otherwise: a
// progress bar in a log file is noise.
func progressWriter(w io.Writer) io.Writer {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return w
}

func (r *loadRun) report(measured time.Duration, before, idle, first, last metricSet, sentBefore, sentAfter vr.Stats, loadCPU time.Duration, realmBefore, realmAfter procSample) {
	secs := measured.Seconds()
	n := float64(r.f.avatars)
	accepted := (last.sum("zerorealm_xr_frames_total", `outcome="accepted"`) - first.sum("zerorealm_xr_frames_total", `outcome="accepted"`)) / secs
	allFrames := (last.sum("zerorealm_xr_frames_total", "") - first.sum("zerorealm_xr_frames_total", "")) / secs
	sent := float64(sentAfter.Frames-sentBefore.Frames) / secs
	windows := (last.sum("zerorealm_xr_windows_scored_total", "") - first.sum("zerorealm_xr_windows_scored_total", "")) / secs
	cpu := (last.sum("process_cpu_seconds_total", "") - first.sum("process_cpu_seconds_total", "")) / secs
	rss := last.sum("process_resident_memory_bytes", "")
	heap := last.sum("go_memstats_heap_inuse_bytes", "")
	// A realm serving more streams than this tool has avatars is also
	// streamed to by someone else (another load tool beside this one):
	// its figures are then the realm's, not this tool's avatars', so they
	// are given per realm stream, and the differences from before this
	// tool's sign-in, which the other client's streams also moved, are
	// left out.
	streams := last.sum("zerorealm_xr_streams", "")
	shared := streams > n

	fmt.Fprintf(r.out, "measured       %s (machine load average at the end: %s)\n", measured.Round(time.Millisecond), loadAverage())
	if shared {
		fmt.Fprintf(r.out, "shared realm   the realm serves %d XR streams, more than this tool's %d avatars: another client streams to it too, so the realm's frames, CPU and memory below are all of its streams', per realm stream\n",
			int(streams), r.f.avatars)
		fmt.Fprintf(r.out, "frames         sent %s/s; accepted by the realm from all its streams %s/s, rejected %s/s\n", thousands(sent), thousands(accepted), thousands(allFrames-accepted))
	} else {
		pct := 0.0
		if sent > 0 {
			pct = 100 * accepted / sent
		}
		fmt.Fprintf(r.out, "frames         sent %s/s, accepted by the realm %s/s (%.1f%%), rejected %s/s\n", thousands(sent), thousands(accepted), pct, thousands(allFrames-accepted))
	}
	fmt.Fprintf(r.out, "windows        scored %s/s\n", thousands(windows))
	r.latMu.Lock()
	lat := slices.Clone(r.latencies)
	r.latMu.Unlock()
	slices.Sort(lat)
	if len(lat) > 0 {
		q := func(p float64) time.Duration { return lat[int(math.Round(p*float64(len(lat)-1)))] }
		fmt.Fprintf(r.out, "trust latency  p50 %s  p99 %s  max %s  (%d scores; newest frame of a window sent -> its score received)\n",
			q(0.5).Round(time.Millisecond), q(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), len(lat))
	} else {
		fmt.Fprintln(r.out, "trust latency  no scores received while measuring (are the avatars enrolled?)")
	}
	states := map[string]int{}
	for _, a := range r.avatars {
		if s := a.state.Load(); s != nil {
			states[*s]++
		}
	}
	fmt.Fprintf(r.out, "trust states   trusted %d, step-up %d, suspended %d\n", states["trusted"], states["step-up"], states["suspended"])
	if busy, shed := r.busy.Load(), r.shed.Load(); busy > 0 || shed > 0 {
		admitted := 0
		for _, a := range r.avatars {
			if a.admitted.Load() {
				admitted++
			}
		}
		fmt.Fprintf(r.out, "node busy      %d refusals of a new stream (node-busy), to %d avatars; %d open streams shed, of %d avatars; each retried after its retry_after; %d of %d avatars' streams opened\n",
			busy, r.busyAvatars.Load(), shed, r.shedAvatars.Load(), admitted, r.f.avatars)
	}
	if n, failed := r.consented.Load(), r.consentFailed.Load(); n > 0 || failed > 0 {
		fmt.Fprintf(r.out, "consent        %d step-ups of avatars told not-enrolled while streaming, %s after their last passkey assertion or more (the realm enrolls on one of the last 2 minutes); %d failed\n",
			n, consentAgainAfter, failed)
	}
	if r.f.scene != "" {
		r.reportFanout(measured)
	}
	if realmBefore.ok && realmAfter.ok {
		cpu = (realmAfter.cpu - realmBefore.cpu).Seconds() / secs
		rss = float64(realmAfter.rss)
		fmt.Fprintf(r.out, "realm process  pid %d, read from /proc: %.2f cores, RSS %s, %d threads; its threads waited %.2f s/s for a core\n",
			r.f.realmPID, cpu, mib(rss), realmAfter.threads, (realmAfter.waited-realmBefore.waited).Seconds()/secs)
	}
	// The collector's share of the realm's CPU, which its target
	// (serve --gc-percent) trades against the heap's headroom. The
	// runtime's figure is an estimate, brought up to date at each
	// collection.
	if gc := last.sum("go_cpu_classes_gc_total_cpu_seconds_total", "") - first.sum("go_cpu_classes_gc_total_cpu_seconds_total", ""); gc > 0 && cpu > 0 {
		fmt.Fprintf(r.out, "realm GC       %.1f%% of its CPU collecting, target GOGC=%g, %d collections while measuring\n",
			100*gc/secs/cpu, last.sum("go_gc_gogc_percent", ""), int(last.sum("go_gc_duration_seconds_count", "")-first.sum("go_gc_duration_seconds_count", "")))
	}
	if shared {
		r.reportSharedRealm(cpu, rss, heap, streams, last)
	} else {
		r.reportRealmPerAvatar(cpu, rss, heap, streams, before, idle, last)
	}
	r.reportClosed()
	fmt.Fprintf(r.out, "client         %d messages dropped by a congested data channel; load tool CPU %.2f cores\n", sentAfter.Dropped-sentBefore.Dropped, loadCPU.Seconds()/secs)
}

// reportRealmPerAvatar gives the realm's CPU and memory per avatar of
// this tool, the realm's growth since before sign-in over the avatars that
// made it.
func (r *loadRun) reportRealmPerAvatar(cpu, rss, heap, streams float64, before, idle, last metricSet) {
	n := float64(r.f.avatars)
	fmt.Fprintf(r.out, "realm CPU      %.2f cores (%.3f ms of CPU per second per avatar)\n", cpu, 1000*cpu/n)
	fmt.Fprintf(r.out, "realm memory   RSS %s (%s before sign-in, %s after; %s per avatar while streaming); Go heap in use %s (%s per avatar)\n",
		mib(rss), mib(before.sum("process_resident_memory_bytes", "")), mib(idle.sum("process_resident_memory_bytes", "")),
		kib((rss-idle.sum("process_resident_memory_bytes", ""))/n), mib(heap), kib((heap-idle.sum("go_memstats_heap_inuse_bytes", ""))/n))
	// Goroutine stacks are in the RSS but not in the heap: each live
	// connection has a reader and a writer.
	if g := last.sum("go_goroutines", ""); g > 0 {
		stacks := last.sum("go_memstats_stack_inuse_bytes", "")
		fmt.Fprintf(r.out, "realm stacks   %d goroutines (%.1f per avatar), stacks %s (%s per avatar)\n",
			int(g), (g-idle.sum("go_goroutines", ""))/n, mib(stacks), kib((stacks-idle.sum("go_memstats_stack_inuse_bytes", ""))/n))
	}
	if streams > 0 {
		fmt.Fprintf(r.out, "stream state   %s per avatar, as the realm's streams count it (%d streams)\n", kib(last.sum("zerorealm_xr_stream_state_bytes", "")/streams), int(streams))
		// The figure the realm's memory target is stated in: the whole
		// RSS, idle realm included, over the avatars; and over the streams
		// still alive, which is the fair one when a loaded machine closed
		// some.
		fmt.Fprintf(r.out, "RSS all in     %s per avatar signed in, %s per live stream (%d of %d alive)\n", kib(rss/n), kib(rss/streams), int(streams), r.f.avatars)
	}
}

// reportSharedRealm gives the realm's CPU and memory per realm stream,
// for a realm that another client streams to as well.
func (r *loadRun) reportSharedRealm(cpu, rss, heap, streams float64, last metricSet) {
	fmt.Fprintf(r.out, "realm CPU      %.2f cores (%.3f ms of CPU per second per realm stream)\n", cpu, 1000*cpu/streams)
	fmt.Fprintf(r.out, "realm memory   RSS %s (%s per realm stream); Go heap in use %s (%s per realm stream)\n",
		mib(rss), kib(rss/streams), mib(heap), kib(heap/streams))
	if g := last.sum("go_goroutines", ""); g > 0 {
		stacks := last.sum("go_memstats_stack_inuse_bytes", "")
		fmt.Fprintf(r.out, "realm stacks   %d goroutines (%.1f per realm stream), stacks %s (%s per realm stream)\n",
			int(g), g/streams, mib(stacks), kib(stacks/streams))
	}
	fmt.Fprintf(r.out, "stream state   %s per stream, as the realm's streams count it (%d streams)\n", kib(last.sum("zerorealm_xr_stream_state_bytes", "")/streams), int(streams))
}

func mib(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }
func kib(b float64) string { return fmt.Sprintf("%.0f KiB", b/(1<<10)) }

func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// scrape reads the realm's /metrics.
func (r *loadRun) scrape(ctx context.Context) (metricSet, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.f.url+"/metrics", nil)
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the realm's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the realm's metrics: %s", resp.Status)
	}
	return parseMetrics(io.LimitReader(resp.Body, 16<<20))
}

// metricSet is a scrape in the Prometheus text format, by metric family.
type metricSet map[string]*dto.MetricFamily

// parseMetrics reads the Prometheus text exposition format with the
// Prometheus project's own parser, so that whatever a realm (or anything
// else at --url) writes is read as Prometheus reads it: comments, label
// values with spaces or escapes, timestamps, histograms. Bad input is an
// error, never a partial scrape. A run scrapes four times, so the parser's
// speed is no part of what the tool measures.
func parseMetrics(rd io.Reader) (metricSet, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rd)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return families, nil
}

// sum adds the samples of metric name that carry label, written as
// key="value" (all of them when label is empty). A histogram's or
// summary's name_sum and name_count are found too, as Prometheus names
// those series.
func (m metricSet) sum(name, label string) float64 {
	key, value, _ := strings.Cut(label, "=")
	if unquoted, err := strconv.Unquote(value); err == nil {
		value = unquoted
	}
	family, part := m[name], ""
	if family == nil {
		for _, suffix := range []string{"_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && m[base] != nil {
				family, part = m[base], suffix
			}
		}
	}
	if family == nil {
		return 0
	}
	var total float64
	for _, metric := range family.GetMetric() {
		if label != "" && !hasLabel(metric, key, value) {
			continue
		}
		total += sampleValue(metric, part)
	}
	return total
}

func hasLabel(metric *dto.Metric, key, value string) bool {
	for _, pair := range metric.GetLabel() {
		if pair.GetName() == key && pair.GetValue() == value {
			return true
		}
	}
	return false
}

// sampleValue is a metric's one value; part picks a histogram's or
// summary's _sum or _count.
func sampleValue(metric *dto.Metric, part string) float64 {
	switch {
	case metric.Counter != nil:
		return metric.GetCounter().GetValue()
	case metric.Gauge != nil:
		return metric.GetGauge().GetValue()
	case metric.Untyped != nil:
		return metric.GetUntyped().GetValue()
	case metric.Histogram != nil && part == "_sum":
		return metric.GetHistogram().GetSampleSum()
	case metric.Histogram != nil && part == "_count":
		return float64(metric.GetHistogram().GetSampleCount())
	case metric.Summary != nil && part == "_sum":
		return metric.GetSummary().GetSampleSum()
	case metric.Summary != nil && part == "_count":
		return float64(metric.GetSummary().GetSampleCount())
	}
	return 0
}
