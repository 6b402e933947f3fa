// Package postgres is Bilean's production store: PostgreSQL through pgx/v5 and a pgxpool, its
// schema applied by goose migrations embedded in the binary (the same library as the embedded
// store, driven through pgx's database/sql adapter).
//
// The database itself keeps the store's invariants (see package store):
//   - billed ranges are tstzrange values under an EXCLUDE USING gist constraint on (resource key
//     WITH =, kind WITH =, range WITH &&) restricted to live ranges, so an overlapping range of an
//     issued invoice is refused by PostgreSQL even when a raw INSERT bypasses this package. The
//     keys are bigint surrogates (resources maps (customer, OpenStack id) to a key), and an
//     invoice stores one merged range per resource and kind, which keeps the constraint cheap;
//   - a partial unique index keeps one live scheduled invoice per customer and period, so two
//     runs finalizing the same customer at the same moment cannot both commit;
//   - invoice numbers come from a counter row bumped (UPDATE … RETURNING, which locks it) inside
//     the finalizing transaction, as late as possible in it: a refused or failed finalize leaves
//     no gap, and the lock is held only for the last statements and the commit.
//
// Bulk paths: trigger records are imported with COPY into a temporary staging table followed by
// set-based statements; the feed reads a whole batch of customers with three streaming queries.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/bilean/bilean/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the PostgreSQL implementation of store.Store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	// now is the clock used for issue and run times; tests may replace it.
	now func() time.Time
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Batches = (*Store)(nil)
)

// defaultMaxConns is the pool size when the URL does not set pool_max_conns: enough for the
// run's workers, their heartbeats and a listener on a small machine.
const defaultMaxConns = 10

// Open connects to the database at url (postgres://…; pgx's pool_max_conns and the usual libpq
// parameters apply, and search_path selects a schema) and applies any pending migration.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx masks the password in the URL it quotes.
		return nil, fmt.Errorf("postgres: open: invalid database url: %w", err)
	}
	if !hasParam(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", cfg.ConnConfig.Host, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s:%d database %s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &Store{pool: pool, now: time.Now}, nil
}

// hasParam reports whether the connection URL sets a query parameter.
func hasParam(url, name string) bool {
	for i := 0; i+len(name) < len(url); i++ {
		if (url[i] == '?' || url[i] == '&') && url[i+1:i+1+len(name)] == name {
			return true
		}
	}
	return false
}

// Migrate applies the embedded migrations the database has not seen yet, holding a
// session-level advisory lock (one per schema) so that processes starting together migrate once.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(crc32.ChecksumIEEE([]byte("bilean-migrate:"+schema)))),
		lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Pool returns the connection pool, for tests and diagnostics that need raw SQL.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes every connection of the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// write runs fn in a read-committed transaction and commits when fn succeeds.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// read runs fn in a read-only repeatable-read transaction, so that several queries of one batch
// see one snapshot.
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// --- conversions ------------------------------------------------------------------------------

// utc normalises a time read from a timestamptz column.
func utc(t time.Time) time.Time { return t.UTC() }

// nullTime turns a zero time (an open end) into NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// fromNull reads NULL as the zero time.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// pgCode returns the SQLSTATE of a PostgreSQL error, "" for any other error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// pgConstraint returns the constraint a PostgreSQL error names, "" when none.
func pgConstraint(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}
