package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/etc"
	_ "github.com/bilean/bilean/handlers" // registers the billing handlers
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/postgres"
	"github.com/bilean/bilean/store/sqlite"
	"github.com/spf13/cobra"
)

// app holds what every subcommand shares.
type app struct {
	configPath string
	database   string
	logLevel   string
	cfg        *config.Config
	log        *slog.Logger
}

func newRoot() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:           "bilean",
		Short:         "Bill the users of an OpenStack cloud: exact, per second, never twice",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.load()
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "configuration file (default etc/bilean.yaml when present, else the built-in one)")
	pf.StringVar(&a.database, "database", "", "store URL, overriding the configuration (sqlite:PATH, postgres://… or host=… dbname=…)")
	pf.StringVar(&a.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	root.AddCommand(a.runCmd(), a.interimCmd(), a.invoicesCmd(), a.importCmd(), a.demoCmd(), a.migrateCmd())
	for _, newCmd := range commands {
		root.AddCommand(newCmd(a))
	}
	return root
}

// load reads the configuration and sets up logging.
func (a *app) load() error {
	var err error
	path := a.configPath
	if path == "" {
		if _, statErr := os.Stat("etc/bilean.yaml"); statErr == nil {
			path = "etc/bilean.yaml"
		}
	}
	if path != "" {
		a.cfg, err = config.Load(path)
	} else {
		a.cfg, err = config.Parse("built-in bilean.yaml", etc.DefaultConfig())
	}
	if err != nil {
		return err
	}
	if a.database != "" {
		a.cfg.Database.URL = a.database
	}
	if a.logLevel != "" {
		a.cfg.Log.Level = a.logLevel
		if err := a.cfg.Validate(); err != nil {
			return err
		}
	}
	a.log = newLogger(a.cfg.Log)
	slog.SetDefault(a.log)
	if os.Getenv("GOMEMLIMIT") == "" {
		if n, _ := config.ParseBytes(a.cfg.Pipeline.MemoryLimit); n > 0 {
			debug.SetMemoryLimit(n)
		}
	}
	return nil
}

func newLogger(c config.Log) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// openStore opens the store the configuration names.
func (a *app) openStore(ctx context.Context) (store.Store, error) {
	return openStore(ctx, a.cfg.Database)
}

// openStore opens the backend database.url names: the embedded SQLite store for sqlite:PATH,
// PostgreSQL for postgres://…, postgresql://… or a keyword string (BILEAN_DATABASE_URL overrides
// the file), with the session timeouts of the database section. Both apply their pending
// migrations on open. Anything else is an error that never shows a password.
func openStore(ctx context.Context, db config.Database) (store.Store, error) {
	driver, path, err := config.ParseDatabaseURL(db.URL)
	if err != nil {
		return nil, fmt.Errorf("database.url: %w", err)
	}
	switch driver {
	case "postgres":
		lock, idle, stmt, ka := db.Timeouts()
		return postgres.OpenWith(ctx, db.URL, postgres.Options{
			LockTimeout: lock, IdleInTransactionSessionTimeout: idle, StatementTimeout: stmt, TCPKeepAlive: ka,
		})
	case "sqlite":
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("create store folder: %w", err)
			}
		}
		return sqlite.Open(ctx, path)
	}
	return nil, fmt.Errorf("database.url: unsupported driver %q", driver)
}

// displayURL is the database URL without its password, for messages.
func displayURL(raw string) string { return config.RedactDatabaseURL(raw) }

func (a *app) env(st store.Store) pipeline.Env {
	return pipeline.Env{Store: st, Config: a.cfg, Log: a.log}
}

func (a *app) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the store's schema (SQLite file or PostgreSQL database)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			fmt.Fprintln(cmd.OutOrStdout(), "store is up to date:", displayURL(a.cfg.Database.URL))
			return nil
		},
	}
}
