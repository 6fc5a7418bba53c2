package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"

	"github.com/zerorealm/zerorealm/internal/keyfile"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/internal/tracing"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

// newGatewayCommand runs a twin gateway beside its actuators, and enrolls
// new ones.
func newGatewayCommand() *cobra.Command {
	var twinID, credsPath, natsURL, logLevel, otelEndpoint, journalPath string
	var natsAuth natsembed.ClientAuth
	var workers int
	cmd := &cobra.Command{
		Use:   "gateway --twin ID --creds FILE",
		Short: "Run a twin gateway: verify every command grant before it moves anything",
		Long: `Run the gateway of one twin, with simulated actuators. It connects to the
realm's NATS server with the nkey of its credentials file (made by
"zerorealm gateway enroll"), can use only its own twin's subjects, verifies
each grant against the realm keys pinned in the file, and refuses
everything while it cannot hear the realm's revocation feed.

On a NATS cluster (see "zerorealm nats config"), give --nats the cluster's
URLs and --nats-creds the gateway's .creds file (or --nats-nkey a seed
file), plus --nats-tls-* when the cluster uses TLS; they replace the nkey
of the credentials file. It reconnects forever.

It keeps a journal of the commands it carried out (--journal, by default
beside the credentials file): a command is carried out at most once, across
restarts too, and a realm node that lost the answer it was given asks for
it again from the journal.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := os.ReadFile(credsPath)
			if err != nil {
				return usagef("read the credentials file: %v", err)
			}
			var creds realm.GatewayCredentials
			if err := json.Unmarshal(data, &creds); err != nil {
				return usagef("credentials file %s: %v", credsPath, err)
			}
			// It holds the gateway's signing key and its NATS seed.
			if err := keyfile.CheckPrivate(credsPath); err != nil {
				return usagef("credentials file: %v", err)
			}
			if twinID != "" && twinID != creds.Twin {
				return usagef("the credentials are for twin %s, not %s", creds.Twin, twinID)
			}
			auth, err := gatewayNATSAuth(creds, natsAuth)
			if err != nil {
				return err
			}
			signer, err := twin.SignerFromHex(creds.Key)
			if err != nil {
				return err
			}
			if natsURL == "" {
				natsURL = creds.NATSURL
			}
			log, err := newLogger(logLevel, "text", cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			// Reconnect forever, even through refused credentials: a gateway
			// that gave up would leave its twin unreachable until restarted.
			opts := append([]nats.Option{nats.Name("zerorealm-gateway-" + creds.Twin), nats.MaxReconnects(-1), nats.IgnoreAuthErrorAbort()}, auth...)
			nc, err := nats.Connect(natsURL, opts...)
			if err != nil {
				return fmt.Errorf("connect to %s: %w", natsURL, err)
			}
			defer nc.Close()
			var tracer trace.Tracer
			if otelEndpoint != "" {
				tp, err := tracing.Provider(cmd.Context(), otelEndpoint, "zerorealm-gateway", creds.Twin)
				if err != nil {
					return usagef("--otel-endpoint: %v", err)
				}
				defer func() {
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					defer cancel()
					_ = tp.Shutdown(ctx)
				}()
				tracer = tracing.Tracer(tp)
			}
			if journalPath == "" {
				journalPath = credsPath + ".journal"
			}
			journal, err := gateway.OpenJournal(gateway.JournalConfig{Path: journalPath}, signer)
			if err != nil {
				return err
			}
			defer journal.Close()
			g, err := gateway.New(gateway.Config{Twin: creds.Twin, Actuators: creds.Actuators, Conn: nc, Prefix: creds.Prefix,
				RealmKeys: creds.RealmKeys, Signer: signer, Logger: log, Tracer: tracer, Journal: journal, Workers: workers})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := g.Start(ctx); err != nil {
				return err
			}
			defer g.Close()
			log.Info("gateway running", "twin", creds.Twin, "nats", natsURL, "ack_key", g.Address().Hex(), "journal", journalPath)
			<-ctx.Done()
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&twinID, "twin", "", "the twin this gateway serves (must match the credentials)")
	fl.StringVar(&credsPath, "creds", "", "the `FILE` of credentials \"zerorealm gateway enroll\" wrote")
	fl.StringVar(&natsURL, "nats", "", "NATS URL (default: the one in the credentials)")
	fl.StringVar(&otelEndpoint, "otel-endpoint", "", "export OpenTelemetry traces of the commands carried out over OTLP/HTTP to this collector, e.g. http://localhost:4318 (empty: off)")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fl.IntVar(&workers, "workers", 2, "grants verified and carried out at once; their journal records share syncs, so more carry more commands a second over a slow disk (docs/twins.md)")
	fl.StringVar(&journalPath, "journal", "", "the `FILE` of the journal of commands carried out (default: the credentials file's name plus .journal)")
	addNATSAuthFlags(fl, &natsAuth, "the gateway")
	_ = cmd.MarkFlagRequired("creds")
	cmd.AddCommand(newGatewayEnrollCommand())
	return cmd
}

// gatewayNATSAuth is what the gateway presents to NATS: the files of its
// --nats-* flags on a cluster, otherwise the enrollment's nkey, which the
// realm's embedded server knows.
func gatewayNATSAuth(creds realm.GatewayCredentials, flags natsembed.ClientAuth) ([]nats.Option, error) {
	opts, err := flags.Options()
	if err != nil {
		return nil, usageError{err}
	}
	if flags.CredsFile != "" || flags.NKeyFile != "" {
		return opts, nil
	}
	kp, err := nkeys.FromSeed([]byte(creds.NKeySeed))
	if err != nil {
		return nil, usagef("credentials nkey: %v", err)
	}
	pub, _ := kp.PublicKey()
	return append(opts, nats.Nkey(pub, kp.Sign)), nil
}

func newGatewayEnrollCommand() *cobra.Command {
	var twinID, dataDir, scenesDir, prefix, natsURL, out string
	var otherNodes []string
	cmd := &cobra.Command{
		Use:   "enroll --twin ID --data DIR --out FILE",
		Short: "Issue a twin gateway's credentials and register it with the realm",
		Long: `Issue a gateway's NATS nkey and acknowledgement key for one twin, write them
with the realm's grant key addresses to --out (mode 0600, keep it secret),
and register the public keys in the realm's data dir. Restart the realm to
admit the gateway; it then stops simulating that twin.

Every realm node signs grants with its own key ring's key. The gateway trusts
the key of the node whose --data this is, and those given with --realm-key:
the address each other node's "zerorealm keys export-public" prints.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var others []common.Address
			for _, a := range otherNodes {
				if !common.IsHexAddress(a) {
					return usagef("--realm-key %q is not an address (0x and 40 hex digits)", a)
				}
				others = append(others, common.HexToAddress(a))
			}
			creds, err := realm.EnrollGateway(dataDir, scenesDir, prefix, twinID, natsURL, others...)
			if err != nil {
				return err
			}
			data, _ := json.MarshalIndent(creds, "", "  ")
			if err := os.WriteFile(out, data, 0o600); err != nil {
				return fmt.Errorf("write credentials: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled a gateway for twin %s; credentials in %s\n", twinID, out)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&twinID, "twin", "", "twin id")
	fl.StringVar(&dataDir, "data", "", "the realm's data directory")
	fl.StringVar(&scenesDir, "scenes", "", "folder of scenes (empty: the scenes shipped in the binary)")
	fl.StringVar(&prefix, "prefix", "zr", "the realm's subject prefix")
	fl.StringVar(&natsURL, "nats-url", "nats://127.0.0.1:4222", "where the gateway reaches the realm's NATS server")
	fl.StringVar(&out, "out", "", "credentials file to write")
	fl.StringArrayVar(&otherNodes, "realm-key", nil, "grant key `ADDRESS` of another realm node to trust (repeatable; from its \"zerorealm keys export-public\")")
	for _, f := range []string{"twin", "data", "out"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}
