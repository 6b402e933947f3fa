package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/pipeline"
	"gopkg.in/yaml.v3"
)

// recorder is a handler that records the batches it saw.
type recorder struct {
	mu      sync.Mutex
	batches [][]string
	started int
	done    int
	fail    string // customer id that makes the batch fail
	panicOn string
}

func (r *recorder) Start(context.Context, *pipeline.Run) error  { r.started++; return nil }
func (r *recorder) Finish(context.Context, *pipeline.Run) error { r.done++; return nil }
func (r *recorder) Handle(_ context.Context, b *pipeline.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, it := range b.Items {
		ids = append(ids, it.CustomerID)
		if it.CustomerID == r.panicOn {
			panic("boom")
		}
		if it.CustomerID == r.fail {
			return errors.New("store is down")
		}
		if it.CustomerID == "bad" {
			it.Err = errors.New("bad data")
		}
	}
	r.batches = append(r.batches, ids)
	return nil
}

var registerOnce sync.Once
var current *recorder

func register(t *testing.T, r *recorder) {
	current = r
	registerOnce.Do(func() {
		pipeline.Register("test_recorder", func(pipeline.Env, *yaml.Node) (pipeline.Handler, error) { return current, nil })
	})
}

func chain(t *testing.T, names ...string) *pipeline.Chain {
	t.Helper()
	var steps []config.Step
	for i, n := range names {
		steps = append(steps, config.Step{Name: n, Line: 10 + i})
	}
	c, err := pipeline.Build(pipeline.Env{Config: &config.Config{Path: "bilean.yaml"}}, "scheduled", steps, pipeline.DefaultMiddleware...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = string(rune('a'+i%26)) + strings.Repeat("x", i/26)
	}
	return out
}

func TestEngineShardsCustomersIntoBatches(t *testing.T) {
	r := &recorder{}
	register(t, r)
	e := &pipeline.Engine{Chain: chain(t, "test_recorder"), BatchSize: 4, Workers: 2}
	run := &pipeline.Run{Mode: pipeline.Scheduled}
	if err := e.Execute(context.Background(), run, append(ids(9), "bad")); err != nil {
		t.Fatal(err)
	}
	if len(r.batches) != 3 || r.started != 1 || r.done != 1 {
		t.Fatalf("batches %v, started %d, finished %d", r.batches, r.started, r.done)
	}
	seen := 0
	for _, b := range r.batches {
		if len(b) > 4 {
			t.Fatalf("batch of %d customers, batch size is 4", len(b))
		}
		seen += len(b)
	}
	if seen != 10 || run.Stats.Customers != 10 || run.Stats.Failed != 1 {
		t.Fatalf("seen %d, stats %+v", seen, run.Stats)
	}
}

func TestInfrastructureErrorStopsTheRun(t *testing.T) {
	r := &recorder{fail: "c"}
	register(t, r)
	e := &pipeline.Engine{Chain: chain(t, "test_recorder"), BatchSize: 1, Workers: 1}
	err := e.Execute(context.Background(), &pipeline.Run{}, ids(10))
	if err == nil || !strings.Contains(err.Error(), "store is down") || !strings.Contains(err.Error(), "test_recorder") {
		t.Fatalf("error = %v", err)
	}
	if len(r.batches) >= 9 || r.done != 1 {
		t.Fatalf("run went on after the error: %d batches, finish called %d times", len(r.batches), r.done)
	}
}

func TestRecoverTurnsAPanicIntoAnErrorNamingTheHandler(t *testing.T) {
	r := &recorder{panicOn: "b"}
	register(t, r)
	e := &pipeline.Engine{Chain: chain(t, "test_recorder"), BatchSize: 2, Workers: 1}
	err := e.Execute(context.Background(), &pipeline.Run{}, ids(4))
	if err == nil || !strings.Contains(err.Error(), "handler test_recorder panicked") {
		t.Fatalf("error = %v", err)
	}
}

func TestUnknownHandlerNamesTheConfigLine(t *testing.T) {
	_, err := pipeline.Build(pipeline.Env{Config: &config.Config{Path: "etc/bilean.yaml"}}, "scheduled", []config.Step{{Name: "subscripton_feeding", Line: 27}})
	if err == nil || !strings.Contains(err.Error(), "etc/bilean.yaml:27") || !strings.Contains(err.Error(), `"subscripton_feeding" is not registered`) {
		t.Fatalf("error = %v", err)
	}
}

func TestRegisterRefusesDuplicatesAndEmptyNames(t *testing.T) {
	f := func(pipeline.Env, *yaml.Node) (pipeline.Handler, error) { return nil, nil }
	if err := pipeline.TryRegister("", f); err == nil {
		t.Error("empty name accepted")
	}
	if err := pipeline.TryRegister("dup_test", f); err != nil {
		t.Fatal(err)
	}
	if err := pipeline.TryRegister("dup_test", f); err == nil {
		t.Error("duplicate accepted")
	}
	defer func() {
		if recover() == nil {
			t.Error("Register did not panic on a duplicate")
		}
	}()
	pipeline.Register("dup_test", f)
}

func TestInterruptedRunReportsIt(t *testing.T) {
	r := &recorder{}
	register(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := &pipeline.Engine{Chain: chain(t, "test_recorder"), BatchSize: 1, Workers: 1}
	if err := e.Execute(ctx, &pipeline.Run{}, ids(3)); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("error = %v", err)
	}
}

// A handler registered for the scheduled chain only (a step that stores, renders, sends or
// exports) is refused in the interim chain, naming the configuration line.
func TestBuildRefusesAHandlerOutsideItsChains(t *testing.T) {
	f := func(pipeline.Env, *yaml.Node) (pipeline.Handler, error) {
		return pipeline.HandlerFunc(func(context.Context, *pipeline.Batch) error { return nil }), nil
	}
	pipeline.RegisterIn("export_test", []string{pipeline.ScheduledChain}, f)
	env := pipeline.Env{Config: &config.Config{Path: "etc/bilean.yaml"}}
	steps := []config.Step{{Name: "export_test", Line: 41}}
	if _, err := pipeline.Build(env, pipeline.ScheduledChain, steps); err != nil {
		t.Fatalf("scheduled chain: %v", err)
	}
	_, err := pipeline.Build(env, pipeline.InterimChain, steps)
	if err == nil || !strings.Contains(err.Error(), "etc/bilean.yaml:41") || !strings.Contains(err.Error(), `"export_test" runs only in the scheduled chain`) {
		t.Fatalf("interim chain: err = %v", err)
	}
}

// startPanicker panics when the run starts.
type startPanicker struct{}

func (startPanicker) Start(context.Context, *pipeline.Run) error    { panic("no catalog") }
func (startPanicker) Handle(context.Context, *pipeline.Batch) error { return nil }

// The middleware wraps Start and Finish too: a panic in a handler's Start is an error naming it.
func TestRecoverCoversStart(t *testing.T) {
	pipeline.Register("test_start_panicker", func(pipeline.Env, *yaml.Node) (pipeline.Handler, error) { return startPanicker{}, nil })
	e := &pipeline.Engine{Chain: chain(t, "test_start_panicker"), BatchSize: 2, Workers: 1}
	err := e.Execute(context.Background(), &pipeline.Run{}, ids(2))
	if err == nil || !strings.Contains(err.Error(), "handler test_start_panicker panicked in start: no catalog") {
		t.Fatalf("error = %v", err)
	}
}

// One lookup of a step's configuration in the scheduled chain, for commands outside a run.
func TestStepConfig(t *testing.T) {
	cfg, err := config.Parse("bilean.yaml", []byte("pipeline:\n  scheduled:\n    - subscription_feeding\n    - finalizing\n    - render: {formats: [pdf], colour: red}\n  interim: [subscription_feeding]\n"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Formats []string `yaml:"formats"`
	}
	if found, err := pipeline.StepConfig(cfg, "email", &v); found || err != nil {
		t.Fatalf("email: found %v, err %v", found, err)
	}
	found, err := pipeline.StepConfig(cfg, "render", &v)
	if !found || err == nil || !strings.Contains(err.Error(), "bilean.yaml:5: pipeline.scheduled render") || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("render with an unknown key: found %v, err %v", found, err)
	}
}
