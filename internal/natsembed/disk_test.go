package natsembed

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

// TestDiskGuardRefusesUnderTheMinimum needs no small disk: a minimum above
// any disk's free space refuses, and lowering it while the server runs
// admits writes again at the next check.
func TestDiskGuardRefusesUnderTheMinimum(t *testing.T) {
	ctx := context.Background()
	e, err := Start(ctx, Config{DataDir: t.TempDir(), MinFreeDisk: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Shutdown(ctx) })
	d := e.Disk()
	if !d.Low || d.Broken || d.Free < 0 {
		t.Fatalf("disk state under an unreachable minimum = %+v, want low, not broken, measured", d)
	}
	if err := e.WriteRefusal(); !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "minimum") {
		t.Fatalf("WriteRefusal = %v, want ErrDiskFull naming the minimum", err)
	}
	e.SetMinFreeDisk(1 << 20)
	waitFor(t, "writes admitted after the minimum was lowered", func() bool { return e.WriteRefusal() == nil })
	if d := e.Disk(); d.Low || d.MinFree != 1<<20 {
		t.Fatalf("disk state after lowering the minimum = %+v", d)
	}
}

// TestDiskGuardRecoversFromAFullDisk fills a small tmpfs under a running
// server until JetStream fails to write, frees the space, and shows that
// JetStream takes writes again, without a restart of the server, and kept
// every message it had acknowledged.
func TestDiskGuardRecoversFromAFullDisk(t *testing.T) {
	dir := natstest.SmallDisk(t, 24<<20)
	ctx := context.Background()
	// No minimum: this test is about the disk really filling up.
	e, err := Start(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Shutdown(ctx) })
	js, err := jetstream.New(e.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	wait := 2 * time.Second
	publish := func() error {
		pctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		_, err := js.Publish(pctx, "t.x", []byte(strings.Repeat("x", 512)))
		return err
	}
	acked := 0
	for range 20 {
		if err := publish(); err != nil {
			t.Fatal(err)
		}
		acked++
	}

	filler := filepath.Join(dir, "filler")
	fillDisk(t, filler)
	// Keep writing until JetStream fails: its file store buffers writes,
	// so the first failure may come a few writes later.
	failed := false
	for i := 0; i < 200 && !failed; i++ {
		if err := publish(); err != nil {
			failed = true
			break
		}
		acked++
	}
	if !failed {
		t.Fatal("JetStream kept taking writes on a full disk")
	}
	waitFor(t, "the guard to see JetStream broken", func() bool { return e.Disk().Broken })
	if err := e.WriteRefusal(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("WriteRefusal on a full disk = %v, want ErrDiskFull", err)
	}
	if err := publish(); err == nil {
		t.Fatal("a write succeeded while the disk was still full")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// Short attempts, so that the figure below says when writes resumed,
	// not how long one attempt against the broken store waited.
	wait = 200 * time.Millisecond
	freed := time.Now()
	deadline := freed.Add(30 * time.Second)
	for publish() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("no write succeeded within 30s of freeing the disk; disk state %+v", e.Disk())
		}
		time.Sleep(50 * time.Millisecond)
	}
	acked++
	t.Logf("writes resumed %v after space returned (JetStream restarts: %d)", time.Since(freed).Round(10*time.Millisecond), e.Disk().Restarts)
	if d := e.Disk(); d.Restarts < 1 || d.Broken {
		t.Fatalf("disk state after recovery = %+v, want at least one restart and not broken", d)
	}
	s, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs < uint64(acked) {
		t.Fatalf("stream holds %d messages after recovery, %d were acknowledged", info.State.Msgs, acked)
	}
}

// fillDisk writes path until the file system refuses.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 64<<10)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, io.ErrShortWrite) && !strings.Contains(err.Error(), "no space left") {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
