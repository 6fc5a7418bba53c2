package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/dirlock"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm"
)

// errFindings makes `zerorealm audit verify` exit 1 when it found
// something, after printing what.
var errFindings = errors.New("the audit log has findings")

type auditVerifyFlags struct {
	nats        string
	natsAuth    natsembed.ClientAuth
	data        string
	prefix      string
	checkpoints []string
	asJSON      bool
	timeout     time.Duration
}

func newAuditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify the realm's audit log offline", Args: noArgs}
	var f auditVerifyFlags
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify every node's audit chain against signed checkpoints kept outside NATS",
		Long: "Reads the AUDIT and AUDITCP streams and verifies each node's chain: its hash links, and\n" +
			"the chain against the checkpoints kept outside NATS, which an attacker with the store\n" +
			"cannot rewrite: DATA/audit (the node's own last checkpoint and the last it witnessed of\n" +
			"every other node) and any --checkpoint FILE a client kept (one entry of\n" +
			"GET /v1/audit/checkpoints, saved as JSON). It names a deleted, inserted or edited event,\n" +
			"a purged, truncated or re-hashed chain, and a known node whose chain vanished.\n\n" +
			"It needs the realm's NATS: --nats URLs (cluster mode, with --nats-creds or the other\n" +
			"--nats-* flags as for serve), or, with --data and no --nats, the\n" +
			"node's embedded store in DATA, opened in this process (the node must be stopped).\n" +
			"Exit status 0: no finding; 1: findings (printed); 2: bad usage.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return auditVerify(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := verify.Flags()
	fl.StringVar(&f.nats, "nats", os.Getenv("ZR_NATS"), "comma-separated NATS URLs of the realm's cluster (empty: open the embedded store in --data)")
	addNATSAuthFlags(fl, &f.natsAuth, "the verifier (a realm node's, which may read AUDIT and AUDITCP)")
	fl.StringVar(&f.data, "data", os.Getenv("ZR_DATA"), "a realm node's data directory: its kept checkpoints (DATA/audit), and its embedded store when --nats is empty")
	fl.StringVar(&f.prefix, "prefix", "zr", "the realm's subject and stream prefix")
	fl.StringArrayVar(&f.checkpoints, "checkpoint", nil, "a checkpoint kept by a client, as GET /v1/audit/checkpoints serves each (repeatable)")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON (as GET /v1/audit/verify answers)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "give up after this long")
	cmd.AddCommand(verify)
	return cmd
}

func auditVerify(parent context.Context, f auditVerifyFlags, stdout, stderr io.Writer) error {
	if f.data == "" && len(f.checkpoints) == 0 {
		return usagef("give --data (a node's data directory) or --checkpoint FILE: without a kept checkpoint, a rewritten and re-hashed chain cannot be told from the original")
	}
	if f.nats == "" && f.data == "" {
		return usagef("give --nats URLs, or --data with the node's embedded store")
	}
	var anchors []audit.Anchor
	if f.data != "" {
		kept, err := audit.LoadAnchors(filepath.Join(f.data, realm.AuditDir))
		if err != nil {
			fmt.Fprintf(stderr, "WARNING: %v\n", err)
		}
		anchors = append(anchors, kept...)
	}
	for _, file := range f.checkpoints {
		a, err := audit.ReadAnchorFile(file)
		if err != nil {
			return usagef("--checkpoint %s: %v", file, err)
		}
		anchors = append(anchors, a)
	}
	ctx, cancel := context.WithTimeout(parent, f.timeout)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var nc *nats.Conn
	if f.nats != "" {
		var err error
		if nc, err = natsembed.Dial(ctx, splitList(f.nats), "zerorealm-audit-verify", f.natsAuth, logger); err != nil {
			return err
		}
		defer nc.Close()
	} else {
		node, err := os.ReadFile(filepath.Join(f.data, "node-id"))
		if err != nil {
			return usagef("%s is not a realm node's data directory (no node-id): %v", f.data, err)
		}
		// Opening an empty store would report every known chain vanished.
		if _, err := os.Stat(filepath.Join(f.data, "nats", "jetstream")); err != nil {
			return usagef("%s holds no embedded store (a node of a cluster?): give --nats URLs", f.data)
		}
		// The store is the node's: refuse while the node runs.
		lock, err := dirlock.Acquire(f.data)
		if err != nil {
			if held, ok := errors.AsType[*dirlock.HeldError](err); ok {
				return usagef("%v: stop the node first, or give --nats to verify through the realm's NATS", held)
			}
			return err
		}
		defer lock.Release()
		emb, err := natsembed.Start(ctx, natsembed.Config{DataDir: f.data, Prefix: f.prefix, ServerName: strings.TrimSpace(string(node)), Logger: logger})
		if err != nil {
			return fmt.Errorf("open the embedded store in %s (is the node still running?): %w", f.data, err)
		}
		defer emb.Shutdown(context.Background())
		nc = emb.Conn()
	}
	st, err := store.New(ctx, nc, store.Config{Prefix: f.prefix, Logger: logger})
	if err != nil {
		return err
	}
	res, err := audit.VerifyAll(ctx, st, anchors)
	if err != nil {
		return err
	}
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printVerify(stdout, res, len(anchors))
	}
	if !res.OK {
		return errFindings
	}
	return nil
}

func printVerify(out io.Writer, res audit.Result, anchors int) {
	fmt.Fprintf(out, "%d chains, held to %d kept checkpoints\n", len(res.Chains), anchors)
	for _, c := range res.Chains {
		cp := "no checkpoint"
		if c.Checkpoint != nil {
			cp = fmt.Sprintf("checkpoint %d cosigned by [%s]", c.Checkpoint.Size, strings.Join(c.Checkpoint.Cosigners, " "))
		}
		fmt.Fprintf(out, "  %-20s %8d events  root %s  %s\n", c.Node, c.Size, c.Root, cp)
	}
	if res.OK {
		fmt.Fprintln(out, "OK: no finding")
		return
	}
	fmt.Fprintf(out, "%d findings:\n", len(res.Findings))
	for _, f := range res.Findings {
		fmt.Fprintf(out, "  %s %s: %s\n", f.Node, f.Kind, f.Detail)
	}
}
