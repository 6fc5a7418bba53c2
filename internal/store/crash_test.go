package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

// crashDirEnv carries the store directory to the child process that is
// killed while appending.
const crashDirEnv = "ZR_STORE_CRASH_DIR"

const (
	crashAppends = 5000 // more than the child gets to before it is killed
	killAfter    = 300  // acknowledged appends before the parent kills it
)

var crashStream = StreamConfig{Name: "CRASH", Subjects: []string{"crash.>"}}

func crashPayload(i int) string { return fmt.Sprintf("record %d", i) }

// TestCrashDurability kills a server process with SIGKILL while it is
// appending and checks that every append it acknowledged is there after a
// restart on the same directory.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("StdoutPipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	acked := map[uint64]int{} // seq -> record number
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var i int
		var seq uint64
		if _, err := fmt.Sscanf(sc.Text(), "ACK %d %d", &i, &seq); err != nil {
			continue // test framework output
		}
		acked[seq] = i
		if len(acked) == killAfter && !killed {
			// Process.Kill is SIGKILL: no chance to flush or shut down.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatalf("kill child: %v", err)
			}
			killed = true
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("child exited after %d acknowledged appends before it could be killed", len(acked))
	}
	t.Logf("child killed after %d acknowledged appends", len(acked))

	srv := natstest.RunServerAt(t, dir)
	s := newTestStore(t, natstest.Connect(t, srv.ClientURL()), Config{})
	st := newTestStream(t, s, crashStream)
	ctx := context.Background()
	var maxSeq uint64
	for seq, i := range acked {
		m, err := st.Get(ctx, seq)
		if err != nil {
			t.Fatalf("acknowledged record %d (seq %d) lost: %v", i, seq, err)
		}
		if got, want := string(m.Data), crashPayload(i); got != want {
			t.Errorf("Get(%d) = %q, want %q", seq, got, want)
		}
		maxSeq = max(maxSeq, seq)
	}
	last, err := st.GetLast(ctx, "crash.log")
	if err != nil {
		t.Fatalf("GetLast: %v", err)
	}
	if last.Seq < maxSeq {
		t.Errorf("GetLast(crash.log).Seq = %d, want at least %d", last.Seq, maxSeq)
	}
	t.Logf("after restart: last sequence %d, %d acknowledged", last.Seq, len(acked))
}

// TestCrashChild is the process TestCrashDurability kills; it does nothing
// unless started by it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestCrashDurability")
	}
	srv := natstest.RunServerAt(t, dir)
	s := newTestStore(t, natstest.Connect(t, srv.ClientURL()), Config{})
	st := newTestStream(t, s, crashStream)
	ctx := context.Background()
	var last uint64
	w := bufio.NewWriter(os.Stdout)
	for i := 1; i <= crashAppends; i++ {
		seq, err := st.AppendIfLast(ctx, "crash.log", []byte(crashPayload(i)), last)
		if err != nil {
			t.Fatalf("AppendIfLast(%d): %v", i, err)
		}
		last = seq
		// Reported only after the ack, and flushed at once, so the parent
		// never counts a record that was not acknowledged.
		w.WriteString("ACK " + strconv.Itoa(i) + " " + strconv.FormatUint(seq, 10) + "\n")
		w.Flush()
	}
}
