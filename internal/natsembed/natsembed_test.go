package natsembed

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestEmbeddedKeepsAcknowledgedDataAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Start(ctx, Config{DataDir: dir, ClientListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if e.ClientURL() == "" {
		t.Fatal("ClientURL is empty with a client listener configured")
	}
	// A TCP client without credentials is refused, gateways enrolled or not.
	if tcp, err := nats.Connect(e.ClientURL()); err == nil {
		tcp.Close()
		t.Fatalf("TCP connect to %s without credentials succeeded", e.ClientURL())
	}

	js, _ := jetstream.New(e.Conn())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := js.Publish(ctx, "t.x", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	e.Shutdown(stopCtx)
	if !e.Conn().IsClosed() {
		t.Fatal("connection still open after Shutdown")
	}

	e2, err := Start(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Shutdown(stopCtx)
	if e2.ClientURL() != "" {
		t.Fatalf("ClientURL = %q with no client listener, want empty", e2.ClientURL())
	}
	js2, _ := jetstream.New(e2.Conn())
	s, err := js2.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 10 {
		t.Fatalf("messages after restart = %d, want 10", info.State.Msgs)
	}
}

func TestBusyClientPortIsAClearError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(context.Background(), Config{DataDir: t.TempDir(), ClientListen: ln.Addr().String()})
	if !errors.Is(err, ErrListen) {
		t.Fatalf("Start on a busy port = %v, want ErrListen", err)
	}
}

func TestConfigMistakes(t *testing.T) {
	if _, err := Start(context.Background(), Config{}); err == nil {
		t.Error("Start without DataDir succeeded")
	}
	if _, err := Start(context.Background(), Config{DataDir: t.TempDir(), ClientListen: "nohost"}); err == nil {
		t.Error("Start with a listen address without port succeeded")
	}
}

func TestDialRetriesUntilContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, []string{"nats://" + addr}, "test", ClientAuth{}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a closed port = %v, want the context's deadline", err)
	}
}
