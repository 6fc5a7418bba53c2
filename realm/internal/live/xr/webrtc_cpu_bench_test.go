package xr

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/zerorealm/zerorealm/clients/vr"
)

// xrBenchClientEnv, set in a test binary's environment, makes it the
// client of BenchmarkDataChannelRealmCPU instead of a test run: it
// sends that many messages.
const xrBenchClientEnv = "ZR_XR_BENCH_CLIENT_MESSAGES"

// The client keeps at most benchWindow messages unread, as
// benchReceive does; the realm frees creditEvery of them at a time with
// one byte on the client's standard input.
const (
	benchWindow = 16
	creditEvery = 8
)

// BenchmarkDataChannelRealmCPU is BenchmarkDataChannelReceive's "realm"
// with the client in a child process (this test binary run again), so
// that cpu-ns/op is the realm's CPU alone for one 8-frame message: its
// sockets, DTLS, SCTP and read loop, and its dating of the message,
// stamped (its peer connection's sockets record receive stamps) or
// unstamped (pion's own sockets). What the two differ by is what the
// stamps cost the realm.
func BenchmarkDataChannelRealmCPU(b *testing.B) {
	for _, tc := range []struct {
		name  string
		stamp bool
	}{{"stamped", true}, {"unstamped", false}} {
		b.Run(tc.name, func(b *testing.B) { benchRealmCPU(b, tc.stamp) })
	}
}

func benchRealmCPU(b *testing.B, stamp bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	api, err := newWebRTCAPI(webrtcNet{}, stamp, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	realm, stamps, err := api.newPeerConnection()
	if err != nil {
		b.Fatal(err)
	}
	defer realm.Close()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), xrBenchClientEnv+"="+strconv.Itoa(b.N))
	cmd.Stderr = os.Stderr
	toClient, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	fromClient, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		toClient.Close() // the client's end: it closes and exits
		if err := cmd.Wait(); err != nil {
			b.Errorf("client: %v", err)
		}
	}()

	var read, dated atomic.Int64
	done := make(chan struct{})
	credit := []byte{1}
	realm.OnDataChannel(func(dc *webrtc.DataChannel) {
		readDatedDetached(b, dc, stamps, func(_ time.Duration, stamped bool) {
			if stamped {
				dated.Add(1)
			}
			n := read.Add(1)
			if n%creditEvery == 0 {
				_, _ = toClient.Write(credit)
			}
			if n == int64(b.N) {
				close(done)
			}
		})
	})

	lines := bufio.NewReader(fromClient)
	var offer webrtc.SessionDescription
	if err := readJSONLine(lines, &offer); err != nil {
		b.Fatal("client's offer: ", err)
	}
	if err := realm.SetRemoteDescription(offer); err != nil {
		b.Fatal(err)
	}
	answer, err := realm.CreateAnswer(nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := setLocalGathered(ctx, realm, answer); err != nil {
		b.Fatal(err)
	}
	if err := writeJSONLine(toClient, realm.LocalDescription()); err != nil {
		b.Fatal(err)
	}
	if _, err := lines.ReadString('\n'); err != nil { // the client's channel is open
		b.Fatal("client's channel: ", err)
	}

	b.SetBytes(int64(len(benchMessage(b))))
	cpu0 := processCPU(b)
	b.ResetTimer()
	if _, err := toClient.Write([]byte{'s'}); err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatalf("a message was lost: %d of %d read before the deadline", read.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	if stamp && dated.Load() != int64(b.N) {
		b.Fatalf("%d of %d messages dated by a receive stamp", dated.Load(), b.N)
	}
}

// benchMessage is the message the client sends: eight frames, a load
// run's --batch 8.
func benchMessage(tb testing.TB) []byte {
	msg, err := vr.AppendMessage(nil, benchFrames(8))
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}

// runXRBenchClient is the child process's part: the client of
// BenchmarkDataChannelRealmCPU, speaking to it over standard input and
// output.
func runXRBenchClient(messages string) {
	n, err := strconv.Atoi(messages)
	if err == nil {
		err = xrBenchClient(n, os.Stdin, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "XR bench client:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// xrBenchClient writes its offer as a JSON line to out, reads the answer
// as one from in, says when its "xr" channel is open with an empty line,
// and on the byte that starts the run sends n messages, at most
// benchWindow of them unread; every later byte frees creditEvery.
func xrBenchClient(n int, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	pc, err := lean(true).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	defer pc.Close()
	ordered, retransmits := false, uint16(0)
	dc, err := pc.CreateDataChannel("xr", &webrtc.DataChannelInit{Ordered: &ordered, MaxRetransmits: &retransmits})
	if err != nil {
		return err
	}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := setLocalGathered(ctx, pc, offer); err != nil {
		return err
	}
	if err := writeJSONLine(out, pc.LocalDescription()); err != nil {
		return err
	}
	lines := bufio.NewReader(in)
	var answer webrtc.SessionDescription
	if err := readJSONLine(lines, &answer); err != nil {
		return err
	}
	if err := pc.SetRemoteDescription(answer); err != nil {
		return err
	}
	select {
	case <-opened:
	case <-ctx.Done():
		return errors.New("data channel not open")
	}
	if _, err := io.WriteString(out, "\n"); err != nil {
		return err
	}
	if _, err := lines.ReadByte(); err != nil { // start
		return err
	}
	credits := make(chan struct{}, n/creditEvery+1)
	go func() {
		defer close(credits)
		for {
			if _, err := lines.ReadByte(); err != nil {
				return // the realm closed its end: the run is over
			}
			credits <- struct{}{}
		}
	}()
	msg, err := vr.AppendMessage(nil, benchFrames(8))
	if err != nil {
		return err
	}
	unread := 0
	for range n {
		for unread >= benchWindow {
			select {
			case _, ok := <-credits:
				if !ok {
					return errors.New("the realm ended the run early")
				}
				unread -= creditEvery
			case <-ctx.Done():
				return errors.New("no credit: a message was lost")
			}
		}
		if err := dc.Send(msg); err != nil {
			return err
		}
		unread++
	}
	for range credits { // until the realm has read them all and closes its end
	}
	return nil
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func readJSONLine(r *bufio.Reader, v any) error {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}
