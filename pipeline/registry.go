package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/store"
	"gopkg.in/yaml.v3"
)

// Handler is one step of a chain.
type Handler interface {
	Handle(ctx context.Context, b *Batch) error
}

// Starter is implemented by handlers that prepare once per run.
type Starter interface {
	Start(ctx context.Context, r *Run) error
}

// Finisher is implemented by handlers that clean up once per run.
type Finisher interface {
	Finish(ctx context.Context, r *Run) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, b *Batch) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, b *Batch) error { return f(ctx, b) }

// Env is what a handler's constructor may use.
type Env struct {
	Store  store.Store
	Config *config.Config
	Log    *slog.Logger
	// OutputDir, when set, overrides the output folder of handlers that write files (bilean demo
	// --dir uses it).
	OutputDir string
}

// Factory constructs a handler from its YAML node (nil when the step has no configuration).
type Factory func(env Env, node *yaml.Node) (Handler, error)

// Chain names: the scheduled chain (also run by regenerate and verify) and the interim chain.
const (
	ScheduledChain = "scheduled"
	InterimChain   = "interim"
)

// registration is a factory and the chains its handler may run in (nil: any).
type registration struct {
	f      Factory
	chains []string
}

var (
	regMu    sync.RWMutex
	handlers = map[string]registration{}
)

// Register makes a handler available by name, in any chain. It panics on an empty or duplicate
// name.
func Register(name string, f Factory) {
	if err := TryRegister(name, f); err != nil {
		panic(err)
	}
}

// RegisterIn makes a handler available by name in the named chains only (e.g. ScheduledChain for
// a step that stores, renders, sends or exports): Build refuses it in any other chain, naming the
// configuration line. It panics on an empty or duplicate name.
func RegisterIn(name string, chains []string, f Factory) {
	if err := tryRegister(name, chains, f); err != nil {
		panic(err)
	}
}

// TryRegister is Register without the panic.
func TryRegister(name string, f Factory) error { return tryRegister(name, nil, f) }

func tryRegister(name string, chains []string, f Factory) error {
	regMu.Lock()
	defer regMu.Unlock()
	if name == "" || f == nil {
		return fmt.Errorf("register handler: empty name or nil factory")
	}
	if _, dup := handlers[name]; dup {
		return fmt.Errorf("register handler %s: already registered", name)
	}
	handlers[name] = registration{f: f, chains: chains}
	return nil
}

// Registered lists the registered handler names, sorted.
func Registered() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(handlers))
	for n := range handlers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// DecodeNode decodes a handler's node strictly into v; a nil node leaves v as it is.
func DecodeNode(node *yaml.Node, v any) error {
	if node == nil {
		return nil
	}
	b, err := yaml.Marshal(node)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		// Errors count lines from the re-marshalled node, which may start with the node's head
		// comment: shift them so the node's own first line lands on its line in the file.
		first := 1
		var again yaml.Node
		if yaml.Unmarshal(b, &again) == nil && len(again.Content) > 0 {
			first = again.Content[0].Line
		}
		msg := lineRe.ReplaceAllStringFunc(err.Error(), func(m string) string {
			n, _ := strconv.Atoi(lineRe.FindStringSubmatch(m)[1])
			return fmt.Sprintf("line %d:", n+node.Line-first)
		})
		return errors.New(strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  "))
	}
	return nil
}

var lineRe = regexp.MustCompile(`line (\d+):`)

// Step is a built handler with its name.
type Step struct {
	Name    string
	Handler Handler
}

// Chain is an ordered list of handlers.
type Chain struct {
	Steps []Step
}

// Build constructs the chain named in config, wrapped in the middleware, in order. An unknown or
// misconfigured handler is an error naming the config file and line.
func Build(env Env, chain string, steps []config.Step, mw ...Middleware) (*Chain, error) {
	c := &Chain{}
	file := "config"
	if env.Config != nil && env.Config.Path != "" {
		file = env.Config.Path
	}
	for i, s := range steps {
		regMu.RLock()
		reg, ok := handlers[s.Name]
		regMu.RUnlock()
		if !ok {
			return nil, fmt.Errorf("%s:%d: pipeline.%s[%d]: handler %q is not registered (known: %s)", file, s.Line, chain, i, s.Name, strings.Join(Registered(), ", "))
		}
		if reg.chains != nil && !slices.Contains(reg.chains, chain) {
			return nil, fmt.Errorf("%s:%d: pipeline.%s[%d]: handler %q runs only in the %s chain", file, s.Line, chain, i, s.Name, strings.Join(reg.chains, " or "))
		}
		h, err := reg.f(env, s.Node)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: pipeline.%s[%d] %s: %w", file, s.Line, chain, i, s.Name, err)
		}
		for j := len(mw) - 1; j >= 0; j-- {
			h = mw[j](s.Name, h)
		}
		c.Steps = append(c.Steps, Step{Name: s.Name, Handler: h})
	}
	return c, nil
}

// StepConfig decodes into v the configuration of the first step named name in the scheduled
// chain, strictly; found is false (and v untouched) when the chain has no such step. Commands
// that render or send outside a run (`invoices show`, `outbox retry`) read their settings here,
// so they are the run's. Errors name the configuration file and line.
func StepConfig(cfg *config.Config, name string, v any) (found bool, err error) {
	for _, s := range cfg.Pipeline.Scheduled {
		if s.Name != name {
			continue
		}
		if err := DecodeNode(s.Node, v); err != nil {
			return true, fmt.Errorf("%s:%d: pipeline.scheduled %s: %w", cfg.Path, s.Line, name, err)
		}
		return true, nil
	}
	return false, nil
}
