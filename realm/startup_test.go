package realm

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestStartWaitsForJetStream starts a realm against a NATS server whose
// JetStream is not running yet, as a node does that comes up a moment
// before its cluster has elected a meta leader. The realm keeps retrying,
// says so on /readyz, and becomes ready once JetStream is enabled.
func TestStartWaitsForJetStream(t *testing.T) {
	srv, err := server.NewServer(&server.Options{ServerName: "late", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("server not ready for connections")
	}

	cfg := Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), NATS: []string{srv.ClientURL()}, Node: "late-node", Logger: testLogger(t)}
	shareClusterKeys(t, &cfg)
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("realm did not stop")
		}
	})

	var h struct {
		Reason string `json:"reason"`
	}
	eventually(t, "/readyz says the realm waits for JetStream", func() bool {
		h.Reason = ""
		return get(t, r.URL()+"/readyz", &h) == http.StatusServiceUnavailable && h.Reason == "waiting for JetStream"
	})
	select {
	case err := <-done:
		t.Fatalf("Serve returned %v while JetStream was not running; want it to keep retrying", err)
	case <-r.Ready():
		t.Fatal("the realm reported ready without JetStream")
	case <-time.After(500 * time.Millisecond):
	}

	if err := srv.EnableJetStream(&server.JetStreamConfig{StoreDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("Serve returned %v once JetStream was enabled; want it ready", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the realm was not ready 60s after JetStream was enabled")
	}
	eventually(t, "/readyz answers 200", func() bool { return get(t, r.URL()+"/readyz", nil) == http.StatusOK })
}
