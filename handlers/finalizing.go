package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"gopkg.in/yaml.v3"
)

// Finalizing stores each invoice with its lines, billed ranges and number, and settles the
// records it billed, in one transaction per invoice. An invoice the store refuses (an overlapping
// range, a customer invoiced meanwhile by another run) fails or skips that customer only.
type Finalizing struct {
	store  store.Finalizer
	format config.NumberFormat
	cfg    *config.Config
}

var _ pipeline.Handler = (*Finalizing)(nil)

func init() {
	pipeline.RegisterIn("finalizing", []string{pipeline.ScheduledChain}, func(env pipeline.Env, node *yaml.Node) (pipeline.Handler, error) {
		if err := pipeline.DecodeNode(node, &struct{}{}); err != nil {
			return nil, err
		}
		nf, err := config.ParseNumberFormat(env.Config.Numbering.Format)
		if err != nil {
			return nil, err
		}
		return &Finalizing{store: env.Store, format: nf, cfg: env.Config}, nil
	})
}

// Handle stores the batch's invoices.
func (h *Finalizing) Handle(ctx context.Context, b *pipeline.Batch) error {
	if b.Run.Mode == pipeline.Interim {
		return fmt.Errorf("finalizing cannot run in an interim run")
	}
	year := b.Run.Period.Start.In(h.cfg.Location()).Year()
	series := h.format.Series(year)
	for _, it := range b.Active() {
		req := store.FinalizeRequest{
			Invoice:      it.Invoice,
			Series:       series,
			NumberFormat: h.format.Format,
			Settle:       it.Settle,
		}
		if b.Run.Replacing != nil {
			// The replaced invoice is voided and its credit note issued in the same transaction,
			// so the chain old → credit note → new is never broken.
			req.Replaces = b.Run.Replacing.Number
			nf, err := h.cfg.CreditNoteNumbering()
			if err != nil {
				return fmt.Errorf("billing.credit_note_format: %w", err)
			}
			req.CreditNote = store.CreditNoteNumbering{Series: nf.Series(b.Run.Now.In(h.cfg.Location()).Year()), Format: nf.Format}
		}
		err := h.store.Finalize(ctx, req)
		var already *store.AlreadyInvoicedError
		var overlap *store.OverlapError
		switch {
		case err == nil:
		case errors.As(err, &already):
			it.SkipInvoiced(already.Invoice)
		case errors.As(err, &overlap):
			it.Err = fmt.Errorf("finalize invoice for %s: %w", it.CustomerID, err)
		default:
			return fmt.Errorf("finalize invoice for %s: %w", it.CustomerID, err)
		}
	}
	return nil
}
