package identity

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/internal/audit"
)

type bootstrappedAs string

func (b bootstrappedAs) Bootstrapped(context.Context) (string, error) { return string(b), nil }

func TestBootstrapPromotesOnceAndIsRememberedOutsideTheStore(t *testing.T) {
	dir := t.TempDir()
	var events []audit.Event
	b := &Bootstrap{
		Roles: []string{"admin", "operator"}, DataDir: dir, Node: "n1",
		Log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		AuditNoWait: func(_ context.Context, ev audit.Event) { events = append(events, ev) },
	}
	cfg := b.Configure(avatar.Config{AdminRole: "admin"})
	if len(cfg.BootstrapRoles) != 2 || cfg.OnBootstrap == nil {
		t.Fatalf("a fresh node's avatar config = roles %v, hook %v; want the bootstrap on", cfg.BootstrapRoles, cfg.OnBootstrap != nil)
	}
	cfg.OnBootstrap(context.Background(), &avatar.Avatar{ID: "av1", Name: "boss", Roles: []string{"admin", "operator"}})
	if len(events) != 1 || events[0].Action != "BootstrapAdmin" || events[0].Actor != "realm:n1" || events[0].Resource != AvatarResource("av1") || events[0].Outcome != audit.Allow {
		t.Fatalf("audited %+v, want one BootstrapAdmin by realm:n1 of av1", events)
	}
	if _, err := os.Stat(filepath.Join(dir, BootstrappedFile)); err != nil {
		t.Fatalf("the promotion left no marker: %v", err)
	}
	// The marker, not the store's key, keeps this node from promoting
	// again: whoever can write NATS may delete the key.
	if again := b.Configure(avatar.Config{AdminRole: "admin"}); again.BootstrapRoles != nil || again.OnBootstrap != nil {
		t.Fatalf("after the marker, avatar config = roles %v; want the bootstrap off", again.BootstrapRoles)
	}
}

func TestBootstrapNotedFromTheStoreAndOff(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	marker := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, BootstrappedFile))
		return err == nil
	}

	dir := t.TempDir()
	(&Bootstrap{DataDir: dir, Log: log}).Note(context.Background(), bootstrappedAs(""))
	if marker(dir) {
		t.Fatal("marked without an administrator made")
	}
	(&Bootstrap{DataDir: dir, Log: log}).Note(context.Background(), bootstrappedAs("av1"))
	if !marker(dir) {
		t.Fatal("the store's bootstrapped administrator left no marker")
	}

	off := &Bootstrap{Disabled: true, Roles: []string{"admin"}, DataDir: t.TempDir(), Log: log}
	off.Note(context.Background(), bootstrappedAs("av1"))
	if marker(off.DataDir) {
		t.Fatal("a node with the bootstrap off wrote its marker")
	}
	if cfg := off.Configure(avatar.Config{AdminRole: "admin"}); cfg.BootstrapRoles != nil || cfg.OnBootstrap != nil {
		t.Fatalf("bootstrap off: avatar config = roles %v; want none", cfg.BootstrapRoles)
	}
}
