// Package handlers holds Bilean's billing handlers, each registered by name from its file's
// init() and listed in etc/bilean.yaml:
//
//	subscription_feeding  customers, subscriptions, trigger records, payments, balances
//	subscription_tree     one draft invoice per customer
//	rule                  recurring policy fees, prorated to the second
//	invoice_calculation   usage lines from rules, rounding, totals
//	finalizing            stores the invoice and its billed ranges in one transaction
//	render                writes the documents (CSV, PDF, XLSX); file names carry the invoice number
//	email                 sends each new invoice once through the store's outbox
//
// The handlers load and orchestrate; they do not price: usage, meters, discounts and fees are
// priced by package calc. See ARCHITECTURE.md for the layers.
//
// Handlers hold no SQL: they use the small interfaces of package store.
package handlers
