// Package pipeline is Bilean's invoicing engine: a run context, the Handler interface, a registry
// of handlers by name, chains built from configuration and the sharding of customers into batches.
//
// # Lifecycle of a handler
//
//  1. Construct: the registered Factory receives the Env (store, settings, logger) and the
//     handler's own YAML node from etc/bilean.yaml (nil when the step has none), decodes it
//     strictly with DecodeNode, validates it and returns the Handler — or an error, which stops
//     the program at start-up naming the config line.
//  2. Start (optional, Starter): called once per run before the first batch.
//  3. Handle: called once per batch, in chain order. A handler works on the batch's Items; an
//     item that is skipped (already invoiced, nothing to bill) or failed (Err) is left alone by
//     later handlers. Returning an error aborts the whole run: use it for infrastructure failures
//     (the store is down), not for one customer's bad data.
//  4. Finish (optional, Finisher): called once per run after the last batch, even after an error.
//
// Middleware wraps every handler in declared order (Recover turns a panic into an error naming
// the handler; Timing adds the handler's time to the run's statistics).
//
// # Runs
//
// A scheduled run invoices every customer (or some) for one period and stores the invoices; an
// interim run prices the period from its start to a moment and stores nothing; a regenerate run
// re-prices one voided invoice's exact ranges. Customers flow in batches of Settings.BatchSize,
// processed by Settings.Workers goroutines, so memory is bounded by the batch size.
package pipeline
