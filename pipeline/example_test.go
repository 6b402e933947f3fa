package pipeline_test

import (
	"context"
	"fmt"
	"sort"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/pipeline"
	"gopkg.in/yaml.v3"
)

// greeter is a handler with a configuration of its own: it marks every customer of a batch.
type greeter struct{ Greeting string }

func (g *greeter) Handle(_ context.Context, b *pipeline.Batch) error {
	for _, it := range b.Active() {
		it.Skip = g.Greeting + " " + it.CustomerID
	}
	return nil
}

// Registering a handler, building a chain from configuration and running it over customers: what
// `bilean run` does with the chains of etc/bilean.yaml.
func Example() {
	pipeline.Register("example_greeter", func(_ pipeline.Env, node *yaml.Node) (pipeline.Handler, error) {
		g := &greeter{Greeting: "hello"}
		// The step's YAML (`- example_greeter: {greeting: hi}`), decoded strictly.
		return g, pipeline.DecodeNode(node, g)
	})
	var node yaml.Node
	if err := yaml.Unmarshal([]byte("{greeting: hi}"), &node); err != nil {
		panic(err)
	}
	steps := []config.Step{{Name: "example_greeter", Node: node.Content[0], Line: 1}}
	chain, err := pipeline.Build(pipeline.Env{}, pipeline.ScheduledChain, steps)
	if err != nil {
		panic(err)
	}
	var done []string
	e := &pipeline.Engine{Chain: chain, BatchSize: 2, Workers: 1, OnItem: func(it *pipeline.Item) { done = append(done, it.Skip) }}
	if err := e.Execute(context.Background(), &pipeline.Run{Mode: pipeline.Scheduled}, []string{"p1", "p2", "p3"}); err != nil {
		panic(err)
	}
	sort.Strings(done)
	fmt.Println(done)
	// Output: [hi p1 hi p2 hi p3]
}
