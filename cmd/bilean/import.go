package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/bilean/bilean/importer"
	"github.com/bilean/bilean/rating"
	"github.com/bilean/bilean/store"
	"github.com/spf13/cobra"
)

func (a *app) importCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Import customers, policies, subscriptions, payments or usage (YAML, CSV or JSON lines)",
		Long: `Each file is validated whole before anything is stored, and stored in one transaction: an
import is all or nothing. Errors name the file, the line and the field.`,
	}
	kinds := []struct {
		name, short string
		load        func(ctx context.Context, st store.Store, path string, r io.Reader) (int, error)
	}{
		{"customers", "customers (YAML or CSV)", func(ctx context.Context, st store.Store, path string, r io.Reader) (int, error) {
			cs, err := importer.Customers(path, r)
			if err != nil {
				return 0, err
			}
			return len(cs), st.PutCustomers(ctx, cs)
		}},
		{"policies", "policies and their rules (YAML)", func(ctx context.Context, st store.Store, path string, r io.Reader) (int, error) {
			ps, err := importer.Policies(path, r, rating.Validate)
			if err != nil {
				return 0, err
			}
			return len(ps), st.PutPolicies(ctx, ps)
		}},
		{"subscriptions", "subscriptions of customers to policies (CSV or YAML)", func(ctx context.Context, st store.Store, path string, r io.Reader) (int, error) {
			ss, err := importer.Subscriptions(path, r)
			if err != nil {
				return 0, err
			}
			_, err = st.AddSubscriptions(ctx, ss)
			return len(ss), err
		}},
		{"payments", "payments received (CSV or YAML)", func(ctx context.Context, st store.Store, path string, r io.Reader) (int, error) {
			ps, err := importer.Payments(path, r)
			if err != nil {
				return 0, err
			}
			return len(ps), st.AddPayments(ctx, ps)
		}},
		{"usage", "trigger records (CSV or JSON lines)", func(ctx context.Context, st store.Store, path string, r io.Reader) (int, error) {
			rs, err := importer.Usage(path, r)
			if err != nil {
				return 0, err
			}
			return len(rs), st.AddRecords(ctx, rs)
		}},
	}
	for _, k := range kinds {
		cmd.AddCommand(&cobra.Command{
			Use:   k.name + " FILE...",
			Short: "Import " + k.short,
			Args:  cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				st, err := a.openStore(cmd.Context())
				if err != nil {
					return err
				}
				defer st.Close()
				for _, path := range args {
					n, err := importFile(cmd.Context(), st, path, k.load)
					if err != nil {
						return fmt.Errorf("import %s %s: nothing imported from this file:\n%w", k.name, path, err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "imported %d %s from %s\n", n, k.name, path)
				}
				return nil
			},
		})
	}
	return cmd
}

func importFile(ctx context.Context, st store.Store, path string, load func(context.Context, store.Store, string, io.Reader) (int, error)) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return load(ctx, st, path, f)
}
