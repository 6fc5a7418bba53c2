package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"github.com/spf13/cobra"

	"github.com/zerorealm/zerorealm/assets"
)

func newReceiptCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "receipt", Short: "Work with asset receipts offline", Args: noArgs}
	var signers []string
	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Verify a receipt (and its inclusion proof, if it has one) with no server",
		Long: "Reads a receipt as the realm serves it (GET /v1/receipts/{digest}, or .../proof with\n" +
			"its inclusion proof; a transfer's answer works too), hashes the EIP-712 data with\n" +
			"go-ethereum's own implementation, recovers the signer and prints what it proves.\n" +
			"With --signer, the signer must be one of the given addresses (zerorealm keys export-public).\n" +
			"FILE - reads standard input.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("receipt verify takes one FILE (- for standard input), not %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			// A trusted signer that is not an address would trust nothing
			// and say so only after the work: refuse it first.
			for _, s := range signers {
				if !common.IsHexAddress(s) {
					return usagef("--signer %q is not an address (0x and 40 hex digits; zerorealm keys export-public lists them)", s)
				}
			}
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return usagef("read the receipt: %v", err)
			}
			return verifyReceipt(cmd.OutOrStdout(), data, signers)
		},
	}
	verify.Flags().StringSliceVar(&signers, "signer", nil, "trusted signer address (repeatable); default: report the signer without judging it")
	cmd.AddCommand(verify)
	return cmd
}

// hashTyped is the EIP-712 digest of a typed-data JSON by go-ethereum's
// apitypes, independent of the realm's own encoder.
func hashTyped(raw json.RawMessage) (common.Hash, apitypes.TypedData, error) {
	var td apitypes.TypedData
	if err := json.Unmarshal(raw, &td); err != nil {
		return common.Hash{}, td, fmt.Errorf("not EIP-712 typed data: %w", err)
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		return common.Hash{}, td, fmt.Errorf("EIP-712 hashing: %w", err)
	}
	return common.BytesToHash(h), td, nil
}

func verifyReceipt(out io.Writer, data []byte, trusted []string) error {
	var doc struct {
		Receipt   json.RawMessage `json:"receipt"`
		Digest    string          `json:"digest"`
		Signature string          `json:"signature"`
		Proof     *struct {
			Checkpoint          json.RawMessage `json:"checkpoint"`
			CheckpointSignature string          `json:"checkpoint_signature"`
			LeafIndex           uint64          `json:"leaf_index"`
			Path                []string        `json:"path"`
		} `json:"proof"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("read receipt: %w", err)
	}
	// A transfer's answer holds the receipt document one level down.
	if doc.Signature == "" && len(doc.Receipt) > 0 {
		if err := json.Unmarshal(doc.Receipt, &doc); err != nil {
			return fmt.Errorf("read receipt: %w", err)
		}
	}
	digest, td, err := hashTyped(doc.Receipt)
	if err != nil {
		return err
	}
	if td.PrimaryType != "Receipt" {
		return fmt.Errorf("the typed data is a %q, not a Receipt", td.PrimaryType)
	}
	if doc.Digest != "" && !strings.EqualFold(doc.Digest, digest.Hex()) {
		return fmt.Errorf("the document says digest %s, the typed data hashes to %s", doc.Digest, digest.Hex())
	}
	sig, err := assets.ParseSignature(doc.Signature)
	if err != nil {
		return err
	}
	signer, err := assets.Recover(digest, sig)
	if err != nil {
		return err
	}
	m := td.Message
	fmt.Fprintf(out, "receipt %s\n  signed by   %s\n  domain      %s v%s, chain id %v, contract %s\n", digest.Hex(), signer.Hex(),
		td.Domain.Name, td.Domain.Version, chainID(td.Domain), td.Domain.VerifyingContract)
	fmt.Fprintf(out, "  proves      the realm applied intent %v at ledger sequence %v\n", m["intent"], m["sequence"])
	fmt.Fprintf(out, "  chain       %v, receipt %v, after receipt %v, at unix time %v\n", m["chain"], m["index"], m["previous"], m["time"])
	if len(trusted) > 0 {
		ok := false
		for _, s := range trusted {
			if strings.EqualFold(s, signer.Hex()) {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("signer %s is not among the trusted signers %v", signer.Hex(), trusted)
		}
		fmt.Fprintln(out, "  signer      trusted")
	}
	if doc.Proof == nil {
		fmt.Fprintln(out, "  proof       none given (GET /v1/receipts/{digest}/proof once checkpointed)")
		return nil
	}
	cdigest, ctd, err := hashTyped(doc.Proof.Checkpoint)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	csig, err := assets.ParseSignature(doc.Proof.CheckpointSignature)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	csigner, err := assets.Recover(cdigest, csig)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if csigner != signer {
		return fmt.Errorf("the checkpoint is signed by %s, the receipt by %s", csigner.Hex(), signer.Hex())
	}
	path, ok := assets.HashList(doc.Proof.Path)
	if !ok {
		return errors.New("proof path: want 0x-prefixed 32-byte hashes")
	}
	var first, count uint64
	var root common.Hash
	if _, err := fmt.Sscan(fmt.Sprint(ctd.Message["first"]), &first); err != nil {
		return fmt.Errorf("checkpoint first: %w", err)
	}
	if _, err := fmt.Sscan(fmt.Sprint(ctd.Message["count"]), &count); err != nil {
		return fmt.Errorf("checkpoint count: %w", err)
	}
	root = common.HexToHash(fmt.Sprint(ctd.Message["root"]))
	var index uint64
	fmt.Sscan(fmt.Sprint(m["index"]), &index)
	if fmt.Sprint(ctd.Message["chain"]) != fmt.Sprint(m["chain"]) || index != first+doc.Proof.LeafIndex ||
		!assets.VerifyInclusion(digest, doc.Proof.LeafIndex, count, path, root) {
		return errors.New("the inclusion proof does not lead to the checkpoint's root")
	}
	fmt.Fprintf(out, "  included in checkpoint %s (receipts %d..%d of chain %v, root %s)\n", cdigest.Hex(), first, first+count-1, ctd.Message["chain"], root.Hex())
	return nil
}

func chainID(d apitypes.TypedDataDomain) string {
	if d.ChainId == nil {
		return "none"
	}
	return (*big.Int)(d.ChainId).String()
}
