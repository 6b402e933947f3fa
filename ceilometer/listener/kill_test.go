package listener_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"gopkg.in/yaml.v3"

	"github.com/bilean/bilean/etc"
	"github.com/bilean/bilean/store/sqlite"
)

// bodies returns n distinct legacy create notifications in their oslo envelopes: each its own
// server and message id, spread over 100 projects.
func bodies(t testing.TB, n int) [][]byte {
	tpl := sample(t, "legacy-compute.instance.create.end.json")
	out := make([][]byte, n)
	for i := range n {
		b := bytes.Replace(tpl, []byte("3c8e1a52-7f0b-4c8e-9d1a-6b2f4e8a9c01"), fmt.Appendf(nil, "srv-%08d", i), 1)
		b = bytes.Replace(b, []byte("6a1d3c5e-7f9b-4d2e-8a4c-1e3b5d7f9a0c"), fmt.Appendf(nil, "msg-%08d", i), 1)
		b = bytes.Replace(b, []byte("8f4c3b2a1d0e4f5a9b8c7d6e5f4a3b2c"), fmt.Appendf(nil, "project-%03d", i%100), 1)
		out[i] = b
	}
	return out
}

// publishAll publishes bodies on a channel of its own (no confirms: the test's count proves
// nothing was lost).
func publishAll(t testing.TB, conn *amqp.Connection, exchange string, bs [][]byte) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	for _, b := range bs {
		if err := ch.PublishWithContext(context.Background(), exchange, "notifications.info", false, false,
			amqp.Publishing{ContentType: "application/json", Body: b}); err != nil {
			return err
		}
	}
	return nil
}

// SIGKILL the listener process in the middle of 100,000 messages, start it again: every message
// is recorded exactly once.
func TestKilledMidStreamRecordsEveryMessageOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary and moves 100,000 messages")
	}
	conn := rabbit(t)
	cfg := topology(t, conn)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bilean")
	build := exec.Command("go", "build", "-o", bin, "github.com/bilean/bilean/cmd/bilean")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	db := filepath.Join(dir, "bilean.db")
	st, err := sqlite.Open(context.Background(), db) // migrate before the listener starts
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	conf := filepath.Join(dir, "bilean.yaml")
	// The shipped configuration with this test's listener section in place of its own.
	var doc map[string]any
	if err := yaml.Unmarshal(etc.DefaultConfig(), &doc); err != nil {
		t.Fatal(err)
	}
	doc["listener"] = map[string]any{
		"url": rabbitURL, "exchanges": []string{cfg.Exchanges[0]}, "queue": cfg.Queue,
		"prefetch": 800, "batch_size": 400, "batch_wait": "50ms", "metrics_address": "off",
	}
	text, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, text, 0o644); err != nil {
		t.Fatal(err)
	}
	start := func(name string) *exec.Cmd {
		cmd := exec.Command(bin, "listen", "--config", conf, "--database", "sqlite:"+db, "--log-level", "warn")
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	events := func() int { return count(t, st, `SELECT COUNT(*) FROM events`) }

	const n = 100_000
	msgs := bodies(t, n)
	pubErr := make(chan error, 1)
	go func() { pubErr <- publishAll(t, conn, cfg.Exchanges[0], msgs) }()

	logOf := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
		return string(b)
	}
	first := start("first")
	waitFor(t, 60*time.Second, "30,000 events before the kill", func() bool { return events() >= 30_000 }, func() string { return logOf("first") })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	killedAt := events()
	t.Logf("killed with %d events recorded", killedAt)
	if err := <-pubErr; err != nil {
		t.Fatalf("publish: %v", err)
	}

	second := start("second")
	waitFor(t, 60*time.Second, fmt.Sprintf("%d events", n), func() bool { return events() >= n }, func() string { return logOf("second") })
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Errorf("listener after SIGTERM: %v\n%s", err, logOf("second"))
	}

	if got := events(); got != n {
		t.Errorf("events = %d, want %d", got, n)
	}
	if got := count(t, st, `SELECT COUNT(DISTINCT message_id) FROM events WHERE message_id LIKE 'msg-%'`); got != n {
		t.Errorf("distinct message ids = %d, want %d", got, n)
	}
	if got := count(t, st, `SELECT COUNT(*) FROM usage_records WHERE source = 'listener' AND end_at IS NULL`); got != n {
		t.Errorf("open records = %d, want %d (one per server)", got, n)
	}
	if got := count(t, st, `SELECT COUNT(*) FROM quarantine`); got != 0 {
		t.Errorf("quarantined = %d, want 0", got)
	}
	ch, _ := conn.Channel()
	defer ch.Close()
	if q, err := ch.QueueDeclarePassive(cfg.Queue, true, false, false, false, nil); err != nil || q.Messages != 0 {
		t.Errorf("queue after the drain: %d messages, %v; want 0", q.Messages, err)
	}
}

// waitFor is eventually, with the listener's log in the failure.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, log func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; listener log:\n%s", timeout, what, log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
