package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/zerorealm/zerorealm/internal/keyfile"
	"github.com/zerorealm/zerorealm/realm"
)

// newTemplateKeyCommand is `zerorealm keys template`: the steps of a
// rotation of the template key (docs/security.md, "Rotating the template
// key") as edits of its file, so that no one copies hex digits by hand.
// Every node of a cluster needs the same file: each step is run on one
// node and its file copied to the others.
func newTemplateKeyCommand(f *keyRingFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "template",
		Short: "Rotate the key that seals biometric templates (show, add, promote, retire)",
		Long: "The template key file holds one key a line: the first seals, the others only open what they\n" +
			"sealed before. A rotation is three steps, each followed by copying the file to every node of\n" +
			"the cluster and restarting the nodes one by one: add (a new key below the sealing one), promote\n" +
			"(the new key first: the first node to start with it rotates the cluster), retire (the old key\n" +
			"leaves, once every node started with the new key first; see docs/security.md).",
		Args: noArgs,
	}
	cmd.PersistentFlags().StringVar(&f.templateKey, "template-key", os.Getenv("ZR_TEMPLATE_KEY"), "the template key's file, as serve --template-key (default: template.key in the data dir)")
	step := func(use, short string, change func(ring [][]byte) ([][]byte, error), next string) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				file, ring, err := f.templateRing()
				if err != nil {
					return err
				}
				if change != nil {
					if ring, err = change(ring); err != nil {
						return usagef("%s: %v", file, err)
					}
					if err := keyfile.WriteRing(file, ring); err != nil {
						return err
					}
				}
				printRing(cmd.OutOrStdout(), file, ring)
				if next != "" {
					fmt.Fprintln(cmd.OutOrStdout(), next)
				}
				return nil
			},
		}
	}
	show := step("show", "Print the ids of the file's keys, the sealing one first", nil, "")
	add := step("add", "Add a new key below the sealing one (step 1 of a rotation)", func(ring [][]byte) ([][]byte, error) {
		if len(ring) != 1 {
			return nil, fmt.Errorf("holds %d keys: a rotation is under way (promote or retire first)", len(ring))
		}
		k, err := keyfile.NewKey()
		if err != nil {
			return nil, err
		}
		return [][]byte{ring[0], k}, nil
	}, "Next: copy the file to every node and restart them one by one; then run promote.")
	promote := step("promote", "Make the added key the sealing one (step 2 of a rotation)", func(ring [][]byte) ([][]byte, error) {
		if len(ring) != 2 {
			return nil, fmt.Errorf("holds %d keys, want the sealing key and the one add put below it", len(ring))
		}
		return [][]byte{ring[1], ring[0]}, nil
	}, "Next: copy the file to every node and restart them one by one; the first to start rotates the cluster.\n"+
		"Once every node has started with it, shows zerorealm_xr_templates_under_retired_keys 0, and ten minutes\n"+
		"have passed, run retire.")
	retire := step("retire", "Drop every key but the sealing one (step 3, once every node started with the new key first and shows zerorealm_xr_templates_under_retired_keys 0)", func(ring [][]byte) ([][]byte, error) {
		if len(ring) < 2 {
			return nil, fmt.Errorf("holds only the sealing key: nothing to retire")
		}
		return ring[:1], nil
	}, "Next: copy the file to every node and restart them one by one; what the retired key sealed no longer opens.")
	cmd.AddCommand(show, add, promote, retire)
	return cmd
}

// templateRing reads the template key file, which must exist: a rotation
// starts from the key the realm made at its first start.
func (f *keyRingFlags) templateRing() (string, [][]byte, error) {
	file := f.templateKey
	if file == "" {
		dir, err := f.dir()
		if err != nil {
			return "", nil, err
		}
		file = filepath.Join(dir, realm.DefaultTemplateKeyFile)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", nil, usagef("the template key: %v (check --template-key or --data; the realm makes it at its first start)", err)
	}
	ring, err := keyfile.ParseRing(raw, file)
	if err != nil {
		return "", nil, err
	}
	return file, ring, nil
}

func printRing(w io.Writer, file string, ring [][]byte) {
	fmt.Fprintln(w, file)
	for i, k := range ring {
		role := "seals and opens"
		if i > 0 {
			role = "opens only"
		}
		fmt.Fprintf(w, "  key %s  %s\n", keyfile.KeyID(k), role)
	}
}
