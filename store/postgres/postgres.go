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
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the PostgreSQL implementation of store.Store. It is safe for concurrent use.
type Store struct {
	store.Logic // the shared transaction logic, over driver (invoicetx.go and the others)
	pool        *pgxpool.Pool
	// now is the clock used for issue and run times; tests may replace it.
	now func() time.Time
	// retryFor bounds the retries of a finalize that failed on a lock timeout (lockRetryWindow).
	retryFor time.Duration
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Batches = (*Store)(nil)
)

// defaultMaxConns is the pool size when the URL does not set pool_max_conns: enough for the
// run's workers, their heartbeats and a listener on a small machine.
const defaultMaxConns = 10

// Options are the session settings of the pool's connections. A setting the URL itself names
// (e.g. ?lock_timeout=2s) wins over the option.
type Options struct {
	// LockTimeout is PostgreSQL's lock_timeout: a statement waiting longer for a lock fails
	// with SQLSTATE 55P03 (Finalize rolls back and retries). 0 is off.
	LockTimeout time.Duration
	// IdleInTransactionSessionTimeout is PostgreSQL's idle_in_transaction_session_timeout: the
	// server ends a session idle inside a transaction that long, releasing its locks (a frozen
	// worker's late commit then fails). 0 is off.
	IdleInTransactionSessionTimeout time.Duration
	// StatementTimeout is PostgreSQL's statement_timeout. 0 is off. Migrations run without it.
	StatementTimeout time.Duration
	// TCPKeepAlive is the idle time before TCP keepalive probes, on the client's sockets and
	// as the server's tcp_keepalives_idle. 0 keeps the system defaults.
	TCPKeepAlive time.Duration
	// ApplicationName shows in pg_stat_activity; default "bilean[PID]".
	ApplicationName string
}

// DefaultOptions are the defaults of the database section of bilean.yaml.
func DefaultOptions() Options {
	return Options{
		LockTimeout:                     10 * time.Second,
		IdleInTransactionSessionTimeout: 60 * time.Second,
		StatementTimeout:                5 * time.Minute,
		TCPKeepAlive:                    30 * time.Second,
	}
}

// Open connects to the database at url with DefaultOptions; see OpenWith.
func Open(ctx context.Context, url string) (*Store, error) {
	return OpenWith(ctx, url, DefaultOptions())
}

// OpenWith connects to the database at url (postgres://… or a keyword string such as
// "host=db dbname=bilean"; pgx's pool_max_conns and the usual libpq parameters apply, and
// search_path selects a schema) with the session settings of opts, and applies any pending
// migration. Messages never show the password.
func OpenWith(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's own message quotes the string with a best-effort redaction: show only what
		// went wrong underneath.
		msg := "invalid connection settings"
		if inner := errors.Unwrap(err); inner != nil {
			msg += ": " + inner.Error()
		}
		return nil, fmt.Errorf("postgres: open %s: %s", config.RedactDatabaseURL(url), msg)
	}
	if !hasParam(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	applyOptions(cfg, opts)
	// Migrations may rewrite big tables: they run on a pool of their own without the statement
	// and lock timeouts.
	mcfg := cfg.Copy()
	mcfg.MaxConns = 2
	mcfg.ConnConfig.RuntimeParams["statement_timeout"] = "0"
	mcfg.ConnConfig.RuntimeParams["lock_timeout"] = "0"
	where := fmt.Sprintf("%s:%d database %s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	mpool, err := pgxpool.NewWithConfig(ctx, mcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	defer mpool.Close()
	if err := mpool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("postgres: connect to %s: %w", where, err)
	}
	if err := Migrate(ctx, mpool); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", where, err)
	}
	s := &Store{pool: pool, now: time.Now, retryFor: lockRetryWindow(cfg.ConnConfig.RuntimeParams)}
	s.Logic = store.Logic{Driver: driver{s}}
	return s, nil
}

// applyOptions sets the session parameters of opts that the URL does not set itself, and the
// client's TCP keepalive.
func applyOptions(cfg *pgxpool.Config, opts Options) {
	rp := cfg.ConnConfig.RuntimeParams
	set := func(name, value string) {
		if _, ok := rp[name]; !ok {
			rp[name] = value
		}
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	set("lock_timeout", ms(opts.LockTimeout))
	set("idle_in_transaction_session_timeout", ms(opts.IdleInTransactionSessionTimeout))
	set("statement_timeout", ms(opts.StatementTimeout))
	name := opts.ApplicationName
	if name == "" {
		name = fmt.Sprintf("bilean[%d]", os.Getpid())
	}
	set("application_name", name)
	if ka := opts.TCPKeepAlive; ka > 0 {
		secs := strconv.Itoa(max(int(ka.Seconds()), 1))
		set("tcp_keepalives_idle", secs)
		set("tcp_keepalives_interval", secs)
		set("tcp_keepalives_count", "3")
		d := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: ka, Interval: ka, Count: 3}}
		if cfg.ConnConfig.ConnectTimeout > 0 {
			d.Timeout = cfg.ConnConfig.ConnectTimeout
		}
		cfg.ConnConfig.DialFunc = d.DialContext
	}
}

// lockRetryWindow is how long Finalize retries after lock timeouts: long enough for the server
// to end the session of a frozen worker that holds the lock (twice its idle-in-transaction
// timeout, plus one lock wait), two minutes when that timeout is off.
func lockRetryWindow(rp map[string]string) time.Duration {
	idle, _ := strconv.ParseInt(rp["idle_in_transaction_session_timeout"], 10, 64)
	lock, _ := strconv.ParseInt(rp["lock_timeout"], 10, 64)
	if idle <= 0 {
		return 2 * time.Minute
	}
	return time.Duration(2*idle+lock)*time.Millisecond + time.Second
}

// hasParam reports whether the connection URL (?name= or &name=) or keyword string (name=)
// sets a parameter.
func hasParam(url, name string) bool {
	for i := 0; i+len(name) < len(url); i++ {
		if (i == 0 || strings.ContainsRune("?& \t", rune(url[i-1]))) && strings.HasPrefix(url[i:], name) {
			rest := strings.TrimLeft(url[i+len(name):], " \t")
			if strings.HasPrefix(rest, "=") {
				return true
			}
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

// finalizeTx runs fn in a read-committed transaction like write, with two additions for
// Finalize:
//
//   - when ctx carries a batch claim (store.WithBatchClaim), the transaction first checks that
//     the claim is still the worker's and holds it (FOR KEY SHARE: heartbeats and FinishBatch go
//     on, a takeover's FOR UPDATE SKIP LOCKED passes it by) until the commit; a claim taken over
//     meanwhile is refused with an error wrapping store.ErrLostClaim, so a worker that was frozen
//     past the staleness limit cannot commit late;
//   - a transaction that failed because a lock wait hit lock_timeout, a deadlock, a serialization
//     failure, or because the server ended the session (idle-in-transaction timeout, shutdown,
//     a connection lost before anything was sent) is rolled back and run again from the start,
//     with backoff, for up to s.retryFor: a worker that held the invoice counter for a while
//     delays the others, it does not fail their customers.
//
// fn must be safe to run more than once (everything it does is in the transaction).
func (s *Store) finalizeTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	claim, fenced := store.BatchClaimFrom(ctx)
	start := time.Now()
	backoff := 20 * time.Millisecond
	window := s.retryFor
	if window <= 0 {
		window = 2 * time.Minute
	}
	for attempt := 1; ; attempt++ {
		err := s.write(ctx, func(tx pgx.Tx) error {
			if fenced {
				if err := holdClaim(ctx, tx, claim); err != nil {
					return err
				}
			}
			return fn(tx)
		})
		why := retryReason(err)
		if why == "" || ctx.Err() != nil {
			return err
		}
		if elapsed := time.Since(start); elapsed > window || (why == "connection" && attempt >= 3) {
			return fmt.Errorf("gave up after %d attempts in %s: %w", attempt, elapsed.Round(time.Millisecond), err)
		}
		slog.Warn("finalize: transaction failed, retrying", "reason", why, "attempt", attempt, "err", err)
		wait := backoff + time.Duration(rand.Int64N(int64(backoff)))
		backoff = min(2*backoff, time.Second)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// holdClaim checks that the worker still holds the batch claim and locks it against a takeover
// until the transaction ends.
func holdClaim(ctx context.Context, tx pgx.Tx, c store.BatchClaim) error {
	var one int
	err := tx.QueryRow(ctx, `
SELECT 1 FROM run_batches WHERE run_id = $1 AND n = $2 AND worker = $3 AND status = 'claimed'
FOR KEY SHARE`, c.RunID, c.N, c.Worker).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("batch %d of run %s is no longer claimed by %s: %w", c.N, c.RunID, c.Worker, store.ErrLostClaim)
	}
	return err
}

// retryReason tells why a failed transaction may be run again ("" when it may not): "lock" for
// lock_timeout, a deadlock or a serialization failure; "session" when the server ended the
// session (idle_in_transaction_session_timeout, administrator, shutdown); "connection" when the
// connection broke.
func retryReason(err error) string {
	if err == nil {
		return ""
	}
	switch pgCode(err) {
	case "55P03", "40P01", "40001": // lock_not_available, deadlock_detected, serialization_failure
		return "lock"
	case "25P03", "57P01", "57P05": // idle_in_transaction_session_timeout, admin_shutdown, idle_session_timeout
		return "session"
	case "":
	default:
		return ""
	}
	var ne net.Error
	if pgconn.SafeToRetry(err) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &ne) {
		return "connection"
	}
	return ""
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
