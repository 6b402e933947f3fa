// Package pgtest gives each test its own empty schema on the test PostgreSQL server, so tests
// against PostgreSQL can run in parallel and leave nothing behind.
//
// The server is BILEAN_TEST_DATABASE_URL, by default the local one with trust authentication
// (postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable). When it cannot be reached the
// test is skipped, unless CI=true, where it fails: in CI a missing server is an error.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bilean/bilean/servicetest"
	"github.com/jackc/pgx/v5"
)

// DefaultURL is the server tests use when BILEAN_TEST_DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerURL returns the URL of the test server.
func ServerURL() string {
	if u := os.Getenv("BILEAN_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var (
	extOnce sync.Once
	extErr  error
)

// Connect opens a connection to the test server, skipping (or, with CI=true, failing) the test
// when the server cannot be reached.
func Connect(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ServerURL())
	servicetest.Require(t, err, "PostgreSQL at BILEAN_TEST_DATABASE_URL or "+DefaultURL, "run .ci/postgres.sh")
	return conn
}

// URL creates a fresh schema for the test and returns the server URL with search_path set to it
// (then public, where btree_gist lives). The schema is dropped when the test ends, after the
// cleanups registered later (such as closing the store) have run.
func URL(t testing.TB) string {
	t.Helper()
	conn := Connect(t)
	ctx := context.Background()
	defer conn.Close(ctx)
	// The extension is per database: install it once, in public, before parallel tests race
	// to create it from their own migrations.
	extOnce.Do(func() {
		for attempt := 0; attempt < 3; attempt++ {
			if _, extErr = conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public`); extErr == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if extErr != nil {
		t.Fatalf("create extension btree_gist: %v", extErr)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bilean_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if os.Getenv("BILEAN_TEST_KEEP_SCHEMA") != "" {
			t.Logf("kept schema %s", schema)
			return
		}
		c := Connect(t)
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(ServerURL())
	if err != nil {
		t.Fatalf("BILEAN_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema+",public")
	u.RawQuery = q.Encode()
	return u.String()
}
