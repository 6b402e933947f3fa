package store

import (
	"context"
	"fmt"

	"github.com/govalues/decimal"

	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store/codec"
)

// GetInvoice returns one invoice with its lines (in order) and its billed ranges (live or, for a
// void invoice, released), read in one snapshot, or an error wrapping ErrNotFound.
func GetInvoice(ctx context.Context, d InvoiceDriver, number string) (*invoice.Invoice, error) {
	var inv invoice.Invoice
	err := d.ReadTx(ctx, func(tx InvoiceTx) error {
		var err error
		if inv, err = tx.InvoiceByNumber(ctx, number); err != nil {
			return err
		}
		if inv.Lines, err = tx.Lines(ctx, inv.ID); err != nil {
			return err
		}
		inv.Ranges, err = tx.Ranges(ctx, inv.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get invoice %s: %w", number, err)
	}
	return &inv, nil
}

// DecodeInvoiceMoney sets the amounts of an invoice read by a driver from their stored text, in
// the order subtotal, tax rate, tax, total, payments, previous balance, balance due, credit
// applied, amount due.
func DecodeInvoiceMoney(inv *invoice.Invoice, money [9]string) error {
	dst := []*decimal.Decimal{&inv.Subtotal, &inv.TaxRate, &inv.Tax, &inv.Total, &inv.Payments, &inv.PreviousBalance, &inv.BalanceDue,
		&inv.CreditApplied, &inv.AmountDue}
	names := []string{"subtotal", "tax_rate", "tax", "total", "payments", "previous_balance", "balance_due", "credit_applied", "amount_due"}
	for i, d := range dst {
		var err error
		if *d, err = codec.Decimal(money[i], "invoice "+inv.Number+" "+names[i]); err != nil {
			return err
		}
	}
	return nil
}

// DecodeCreditNoteMoney sets the subtotal, tax rate, tax and total of a credit note read by a
// driver from their stored text.
func DecodeCreditNoteMoney(cn *invoice.CreditNote, m [4]string) error {
	for i, d := range []*decimal.Decimal{&cn.Subtotal, &cn.TaxRate, &cn.Tax, &cn.Total} {
		var err error
		if *d, err = codec.Decimal(m[i], "credit note "+cn.Number); err != nil {
			return err
		}
	}
	return nil
}

// DecodeLine sets the section, amounts and attributes of line n (from 1) of an invoice read by a
// driver from their stored text.
func DecodeLine(l *invoice.Line, n int, section, qty, price, amount, attrs string) error {
	var err error
	l.Section = invoice.Section(section)
	if l.Quantity, err = codec.Decimal(qty, fmt.Sprintf("line %d quantity", n)); err != nil {
		return err
	}
	if l.UnitPrice, err = codec.Decimal(price, fmt.Sprintf("line %d unit_price", n)); err != nil {
		return err
	}
	if l.Amount, err = codec.Decimal(amount, fmt.Sprintf("line %d amount", n)); err != nil {
		return err
	}
	if l.Attributes, err = codec.ParseAttrs(attrs); err != nil {
		return fmt.Errorf("line %d: %w", n, err)
	}
	return nil
}
