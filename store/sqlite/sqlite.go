// Package sqlite is Bilean's embedded store: one SQLite database file, opened with the pure-Go
// driver modernc.org/sqlite, its schema applied by goose migrations embedded in the binary.
//
// The database itself keeps the store's invariants (see package store): triggers refuse an
// overlapping live billed range even when a raw INSERT bypasses this package, a partial unique
// index keeps one live scheduled invoice per customer and period, and invoice numbers come from a
// counter bumped inside the finalizing transaction, so a refused or failed finalize leaves no gap.
//
// Times are stored as INTEGER Unix seconds (UTC), an open end as NULL, money as TEXT decimal
// strings that keep their scale ("0.0000027" and "12.50" read back exactly as written).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/govalues/decimal"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQLite implementation of store.Store. It is safe for concurrent use; write
// transactions begin IMMEDIATE and wait up to 10 s for the write lock (busy_timeout).
type Store struct {
	store.Logic // the shared transaction logic, over driver (invoicetx.go and the others)
	db          *sql.DB
	// now is the clock used for issue and run times; tests may replace it.
	now func() time.Time
	// wmu serialises this process's write transactions: SQLite has one writer, and waiting on a
	// mutex is cheaper than the busy handler's sleeps. Other processes still wait on busy_timeout.
	wmu sync.Mutex
}

var _ store.Store = (*Store)(nil)

// Open opens the SQLite database at path, creating the file when it does not exist, and applies
// any pending migration. The connections use WAL journaling, synchronous NORMAL, foreign keys and
// a 10 s busy timeout; read-write transactions begin IMMEDIATE.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty database path")
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Keep connections open between calls: a new one re-runs the pragmas and re-reads the schema.
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := Migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s := &Store{db: db, now: time.Now}
	s.Logic = store.Logic{Driver: driver{s}}
	return s, nil
}

// dsn builds the driver's connection string for a database file. The path is escaped as SQLite's
// URI syntax requires (https://www.sqlite.org/uri.html).
func dsn(path string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc +
		"?_pragma=busy_timeout(10000)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)" +
		"&_pragma=cache_size(-8192)" +
		"&_txlock=immediate"
}

// Migrate applies the embedded migrations that db has not seen yet. It is idempotent.
func Migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// DB returns the underlying database handle, for tests and diagnostics that need raw SQL.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// write runs fn in a read-write transaction (BEGIN IMMEDIATE) and commits when fn succeeds.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// read runs fn in a read-only transaction, so that several queries see one snapshot.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// eachRow calls fn for every row of a query's result, closes the rows and returns the first
// error (of the query, of fn, or of the iteration). rows and err are what QueryContext returned:
//
//	rows, err := tx.QueryContext(ctx, q, args...)
//	err = eachRow(rows, err, func(rows *sql.Rows) error { return rows.Scan(&x) })
//
// Errors are returned as they are, for the caller to wrap once.
func eachRow(rows *sql.Rows, err error, fn func(*sql.Rows) error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// --- column conversions ---------------------------------------------------------------------

// sec stores a time as Unix seconds.
func sec(t time.Time) int64 { return t.Unix() }

// nullSec stores a zero time (an open end) as NULL.
func nullSec(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.Unix(), Valid: true}
}

// fromSec reads Unix seconds as a UTC time.
func fromSec(s int64) time.Time { return time.Unix(s, 0).UTC() }

// fromNullSec reads NULL as the zero time.
func fromNullSec(s sql.NullInt64) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	return fromSec(s.Int64)
}

// dec stores a decimal as text, keeping its scale.
func dec(d decimal.Decimal) string { return d.String() }

// idsJSON encodes ids, sorted and without duplicates, as a JSON array for a json_each(?)
// parameter (a duplicate would double the rows of a join).
func idsJSON(ids []string) string {
	b, _ := json.Marshal(codec.SortedUnique(ids)) // a []string always encodes
	return string(b)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
