package main

import (
	"fmt"

	"github.com/bilean/bilean/importer"
	"github.com/bilean/bilean/rating"
	"github.com/spf13/cobra"
)

func (a *app) importCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Import customers, policies, subscriptions, payments, usage or meter totals (YAML, CSV or JSON lines)",
		Long: `Each file is validated whole before anything is stored, and stored in one transaction: an
import is all or nothing. Errors name the file, the line and the field.`,
	}
	short := map[string]string{
		"customers":     "customers (YAML or CSV)",
		"policies":      "policies and their rules (YAML)",
		"subscriptions": "subscriptions of customers to policies (CSV or YAML)",
		"payments":      "payments received (CSV or YAML)",
		"usage":         "trigger records (CSV or JSON lines), streamed in chunks",
		"meters":        "meter totals, e.g. traffic per port (CSV or JSON lines)",
	}
	for _, kind := range importer.Kinds {
		cmd.AddCommand(&cobra.Command{
			Use:   kind + " FILE...",
			Short: "Import " + short[kind],
			Args:  cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				st, err := a.openStore(cmd.Context())
				if err != nil {
					return err
				}
				defer st.Close()
				opts := importer.Options{ValidateRule: rating.ValidateRuleNode, Chunk: 10000}
				for _, path := range args {
					n, err := importer.ImportFile(cmd.Context(), st, kind, path, opts)
					if err != nil {
						return fmt.Errorf("import %s %s: nothing imported from this file:\n%w", kind, path, err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "imported %d %s from %s\n", n, kind, path)
				}
				return nil
			},
		})
	}
	return cmd
}
