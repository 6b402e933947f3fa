package main

import (
	"io"

	"github.com/bilean/bilean/handlers"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
)

// writeCSV renders an invoice as CSV with the render step's settings from the scheduled chain.
func writeCSV(w io.Writer, inv *invoice.Invoice, a *app) error {
	var c handlers.RenderConfig
	if _, err := pipeline.StepConfig(a.cfg, "render", &c); err != nil {
		return err
	}
	reg, err := handlers.Renderers(c)
	if err != nil {
		return err
	}
	r, err := reg.Lookup("csv")
	if err != nil {
		return err
	}
	return r.Render(w, inv)
}
