package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/zerorealm/zerorealm/internal/buildinfo"
)

func newRootCommand() *cobra.Command {
	serve := newServeCommand()
	root := &cobra.Command{
		Use:           "zerorealm",
		Short:         "ZeroRealm: a zero-trust world server for shared virtual worlds",
		Long:          "ZeroRealm hosts scenes that VR clients join and trusts nothing for being connected.\nWith no subcommand it runs `serve`.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          serve.RunE,
	}
	// The root runs serve, so it accepts serve's flags too.
	root.Flags().AddFlagSet(serve.Flags())
	root.AddCommand(serve, newVersionCommand())
	root.AddCommand(newLoadCommand())
	root.AddCommand(newKeysCommand(), newReceiptCommand(), newAuditCommand())
	root.AddCommand(newGatewayCommand(), newNATSCommand())
	root.AddCommand(newEvalCommand())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usagef("%v (see zerorealm --help)", err)
	})
	return root
}

func newVersionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the build's version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Get()
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(info)
			}
			line := "zerorealm " + info.Version
			if info.Revision != "" {
				line += " (" + shortRev(info.Revision)
				if info.Modified {
					line += ", modified"
				}
				line += ")"
			}
			fmt.Fprintln(cmd.OutOrStdout(), line+" "+info.GoVersion)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func shortRev(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return r
}

// envName is the environment variable that sets a flag: ZR_ plus the flag
// name in upper case with dashes as underscores.
func envName(flag string) string {
	return "ZR_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applySources fills every flag not given on the command line from the
// environment, then from the YAML config file, in that order of precedence.
func applySources(flags *pflag.FlagSet, configFlag string) error {
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if serr := flags.Set(f.Name, v); serr != nil {
				err = usagef("environment %s=%q: %v", envName(f.Name), v, serr)
			}
		}
	})
	if err != nil {
		return err
	}
	path, _ := flags.GetString(configFlag)
	if path == "" {
		return nil
	}
	values, err := readConfigFile(path)
	if err != nil {
		return err
	}
	for key, v := range values {
		f := flags.Lookup(key)
		if f == nil || key == configFlag {
			return usagef("config %s: unknown setting %q (settings are the flag names, e.g. listen, data, nats)", path, key)
		}
		if f.Changed {
			continue
		}
		if err := flags.Set(key, v); err != nil {
			return usagef("config %s: %s: %v", path, key, err)
		}
	}
	return nil
}

// readConfigFile reads a flat YAML mapping of flag names to values; a list
// value (e.g. several NATS URLs) is joined with commas.
func readConfigFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("cannot read config file: %v (check --config or ZR_CONFIG)", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, usagef("config %s is not valid YAML: %v", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch val := v.(type) {
		case nil:
			out[k] = ""
		case []any:
			parts := make([]string, len(val))
			for i, p := range val {
				parts[i] = fmt.Sprint(p)
			}
			out[k] = strings.Join(parts, ",")
		case map[string]any:
			return nil, usagef("config %s: %s must be a single value or a list", path, k)
		default:
			out[k] = fmt.Sprint(val)
		}
	}
	return out, nil
}

// noArgs refuses positional arguments as a usage mistake (exit 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return usagef("%v (see zerorealm --help)", err)
	}
	return nil
}
