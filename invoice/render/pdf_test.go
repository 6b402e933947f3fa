package render

import (
	"bytes"
	"fmt"
	"image"
	_ "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/servicetest"
)

// docOptions is a realistic issuer as etc/bilean.yaml configures it.
func docOptions() DocumentOptions {
	return DocumentOptions{
		Issuer: Issuer{
			Name:         "Nimbus Cloud GmbH",
			Address:      []string{"Friedrichstraße 123", "10117 Berlin", "Germany"},
			TaxID:        "DE123456789",
			Registration: "Amtsgericht Berlin-Charlottenburg HRB 123456",
			Email:        "billing@nimbus.example",
			Phone:        "+49 30 1234567",
			Bank:         Bank{Name: "Berliner Sparkasse", IBAN: "DE89 3704 0044 0532 0130 00", BIC: "COBADEFFXXX"},
		},
		DueDays: 14,
		Locale:  "en-GB",
		Customers: map[string]CustomerDetails{
			"4f2a9c0e1b7d4e8f9a6b3c2d1e0f9a8b": {Address: []string{"Hauptstraße 1", "80331 München"}, TaxID: "DE987654321", Reference: "PO-2026-0042"},
			"zurich":                           {Locale: "de-DE", Address: []string{"Bahnhofstrasse 10", "8001 Zürich", "Schweiz"}},
			"tokyo":                            {Locale: "ja-JP", Address: []string{"東京都千代田区丸の内1-1-1"}},
			"paris":                            {Locale: "fr-FR", Address: []string{"12 rue de Rivoli", "75001 Paris"}},
			"nyc":                              {Locale: "en-US", Address: []string{"350 Fifth Avenue", "New York, NY 10118"}},
		},
	}
}

// issued gives the sample invoice an issue date, as finalizing does.
func issued(t *testing.T) *invoice.Invoice {
	inv := sample(t)
	inv.IssuedAt = at("2026-11-01T02:00:00Z")
	return inv
}

// unicodeInvoice is the sample for a customer with a non-Latin name and a German locale.
func unicodeInvoice(t *testing.T, id, name string) *invoice.Invoice {
	inv := issued(t)
	inv.CustomerID = id
	inv.CustomerName = name
	inv.Lines[1].Description = "Server 東京-web-1 (m1.small) für Zürich"
	return inv
}

// longInvoice has n usage lines over three resource types; its totals are calculated by
// invoice.Calculate, never by a renderer.
func longInvoice(t testing.TB, n int) *invoice.Invoice {
	inv := &invoice.Invoice{
		Number: "INV-2026-000300", Kind: invoice.Scheduled, Status: invoice.Issued,
		CustomerID: "4f2a9c0e1b7d4e8f9a6b3c2d1e0f9a8b", CustomerName: "Big Data Corp", Currency: "EUR",
		IssuedAt: at("2026-11-01T02:00:00Z"), TaxRate: dec("0.19"),
		Payments: dec("1000"), PreviousBalance: dec("250.40"),
	}
	inv.Period.Start = at("2026-10-01T00:00:00Z")
	inv.Period.End = at("2026-11-01T00:00:00Z")
	types := []struct{ typ, unit, price, desc string }{
		{"os.nova.server", "hour", "0.0250", "Server node-%04d (m1.small)"},
		{"os.cinder.volume", "GB-hour", "0.00015", "Volume data-%04d"},
		{"os.neutron.floatingip", "hour", "0.005", "Floating IP 203.0.113.%d"},
	}
	for i := 0; i < n; i++ {
		ty := types[i%len(types)]
		start := inv.Period.Start.Add(time.Duration(i%20) * time.Hour)
		secs := int64(inv.Period.End.Sub(start) / time.Second)
		hours := dec(fmt.Sprintf("%d", secs/3600))
		price := dec(ty.price)
		q := hours
		if ty.unit == "GB-hour" {
			q, _ = hours.Mul(dec("50"))
		}
		amount, _ := q.Mul(price)
		inv.Lines = append(inv.Lines, invoice.Line{
			Section: invoice.Usage, ResourceID: fmt.Sprintf("res-%06d", i), ResourceType: ty.typ,
			Description: fmt.Sprintf(ty.desc, i), Region: "RegionOne", Start: start, End: inv.Period.End,
			Seconds: secs, Quantity: q, Unit: ty.unit, UnitPrice: price, Granularity: "hour",
			Amount: invoice.DefaultRounding.Round(amount), Attributes: map[string]string{"n": fmt.Sprint(i)},
		})
	}
	if err := inv.Calculate(invoice.DefaultRounding); err != nil {
		t.Fatal(err)
	}
	return inv
}

func renderPDF(t testing.TB, o DocumentOptions, inv *invoice.Invoice) []byte {
	t.Helper()
	r, err := NewPDF(o)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.Render(&b, inv); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// needPoppler skips when pdftotext and pdftoppm are missing, except on CI.
func needPoppler(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"pdftotext", "pdftoppm"} {
		servicetest.Tool(t, tool, "Debian's poppler-utils; .ci/poppler.sh installs it")
	}
}

// pdfText extracts the text of a PDF with pdftotext -layout.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.pdf")
	if err := os.WriteFile(in, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", "-enc", "UTF-8", in, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	// Trailing spaces depend on the poppler version, not on us.
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func TestPDFGolden(t *testing.T) {
	needPoppler(t)
	long := longInvoice(t, 300)
	for _, tc := range []struct {
		golden string
		inv    *invoice.Invoice
		want   []string
	}{
		{"invoice.pdf.txt.golden", issued(t), []string{"INVOICE", "INV-2026-000123", "Nimbus Cloud GmbH", "VAT ID DE123456789",
			"ACME, \"the\" GmbH", "PO-2026-0042", "Due date", "15 Nov 2026", "1 Oct 2026 – 31 Oct 2026", "Recurring fees",
			"Usage – Servers (os.nova.server)", "Adjustments and late usage", "Credits", "Tax 20%", "€6.72",
			"BALANCE", "-€63.28", "Page 1 of 1"}},
		// Amounts here are as stored: subtotal 5.60, tax 1.12, total 6.72, previous 30.00,
		// payments 100.00, amount due 30 + 6.72 − 100 = −63.28.
		{"invoice_zurich.pdf.txt.golden", unicodeInvoice(t, "zurich", "Zürich Ünïcode Ltd"), []string{"Zürich Ünïcode Ltd",
			"8001 Zürich", "01.10.2026 – 31.10.2026", "15.11.2026", "Server 東京-web-1 (m1.small) für Zürich", "-63,28 €", "20 %"}},
		{"invoice_tokyo.pdf.txt.golden", unicodeInvoice(t, "tokyo", "株式会社テスト (Tokyo)"), []string{"株式会社テスト (Tokyo)",
			"東京都千代田区丸の内1-1-1", "2026年11月15日", "-€63.28"}},
		{"invoice_300.pdf.txt.golden", long, []string{"Page 1 of 13", "Page 13 of 13", "res-000299", "Amount due"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			txt := pdfText(t, renderPDF(t, docOptions(), tc.inv))
			golden(t, tc.golden, []byte(txt))
			for _, w := range tc.want {
				if !strings.Contains(txt, w) {
					t.Errorf("text lacks %q", w)
				}
			}
		})
	}
}

func TestPDFLongInvoiceRepeatsHeader(t *testing.T) {
	needPoppler(t)
	inv := longInvoice(t, 300)
	txt := pdfText(t, renderPDF(t, docOptions(), inv))
	pages := strings.Split(strings.TrimRight(txt, "\f\n"), "\f")
	if len(pages) < 2 {
		t.Fatalf("%d pages for 300 lines", len(pages))
	}
	seen := 0
	for i, p := range pages {
		if !strings.Contains(p, fmt.Sprintf("Page %d of %d", i+1, len(pages))) {
			t.Errorf("page %d: no \"Page %d of %d\"", i+1, i+1, len(pages))
		}
		if i < len(pages)-1 && !(strings.Contains(p, "Description") && strings.Contains(p, "Unit price") && strings.Contains(p, "Amount")) {
			t.Errorf("page %d: table header missing", i+1)
		}
		seen += strings.Count(p, "res-")
	}
	if seen != 300 {
		t.Errorf("%d lines printed, want 300", seen)
	}
	// The stored totals are printed, not recomputed.
	last := pages[len(pages)-1]
	for _, amount := range []string{inv.Subtotal.String(), inv.Tax.String(), inv.BalanceDue.String()} {
		if !strings.Contains(last, amountGB(amount)) {
			t.Errorf("last page lacks %s:\n%s", amountGB(amount), last)
		}
	}
}

// amountGB writes "1234.50" as en-GB does: "1,234.50".
func amountGB(s string) string { return Locales["en-GB"].number(dec(s)) }

func TestPDFDoesNotRecompute(t *testing.T) {
	needPoppler(t)
	inv := issued(t)
	inv.Total = dec("999.99")
	inv.BalanceDue = dec("12345.67")
	txt := pdfText(t, renderPDF(t, docOptions(), inv))
	for _, w := range []string{"€999.99", "€12,345.67", "Please pay €12,345.67"} {
		if !strings.Contains(txt, w) {
			t.Errorf("stored figure %s not printed", w)
		}
	}
}

func TestPDFStableBytes(t *testing.T) {
	o := docOptions()
	for _, inv := range []*invoice.Invoice{issued(t), unicodeInvoice(t, "tokyo", "株式会社テスト"), longInvoice(t, 300)} {
		a := renderPDF(t, o, inv)
		for i := 0; i < 3; i++ {
			if b := renderPDF(t, o, inv); !bytes.Equal(a, b) {
				t.Fatalf("%s: rendering %d differs from the first", inv.CustomerName, i+2)
			}
		}
		if !bytes.Contains(a, []byte("/CreationDate (D:20261101020000")) {
			t.Errorf("%s: creation date is not the issue date", inv.CustomerName)
		}
	}
}

// TestPDFPageImage renders page 1 to PNG and checks that it is a drawn page, not blank: the
// pixels vary, and some are dark (text) while most are white (paper). BILEAN_KEEP_PNG=dir keeps
// the image for a look.
func TestPDFPageImage(t *testing.T) {
	needPoppler(t)
	for _, tc := range []struct {
		name string
		inv  *invoice.Invoice
	}{
		{"sample", issued(t)},
		{"tokyo", unicodeInvoice(t, "tokyo", "株式会社テスト")},
		{"long", longInvoice(t, 300)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if keep := os.Getenv("BILEAN_KEEP_PNG"); keep != "" {
				dir = keep
			}
			in := filepath.Join(dir, tc.name+".pdf")
			if err := os.WriteFile(in, renderPDF(t, docOptions(), tc.inv), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, tc.name)
			if b, err := exec.Command("pdftoppm", "-png", "-r", "100", "-f", "1", "-l", "2", in, out).CombinedOutput(); err != nil {
				t.Fatalf("pdftoppm: %v %s", err, b)
			}
			matches, _ := filepath.Glob(out + "-*.png")
			if len(matches) == 0 {
				t.Fatal("pdftoppm wrote no image")
			}
			f, err := os.Open(matches[0])
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, _, err := image.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			b := img.Bounds()
			var n, dark, white float64
			var sum, sumSq float64
			for y := b.Min.Y; y < b.Max.Y; y++ {
				for x := b.Min.X; x < b.Max.X; x++ {
					r, g, bl, _ := img.At(x, y).RGBA()
					l := (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 257
					sum += l
					sumSq += l * l
					n++
					if l < 100 {
						dark++
					}
					if l > 245 {
						white++
					}
				}
			}
			mean := sum / n
			variance := sumSq/n - mean*mean
			t.Logf("%s: %dx%d, mean %.1f, variance %.1f, dark %.2f%%, white %.2f%%", matches[0], b.Dx(), b.Dy(), mean, variance, 100*dark/n, 100*white/n)
			if variance < 200 || dark/n < 0.005 || white/n < 0.6 {
				t.Errorf("page 1 looks blank or garbled: variance %.1f, dark %.3f, white %.3f", variance, dark/n, white/n)
			}
		})
	}
}

// TestPDFFontsOnDemand checks that an ordinary invoice embeds one font, the single-byte
// DejaVu Sans, and that a Polish, Greek, Cyrillic or Japanese name adds the UTF-8 font that
// draws it, so that every character is printed (not "?" or a box) while ordinary invoices stay
// fast.
func TestPDFFontsOnDemand(t *testing.T) {
	needPoppler(t)
	for _, tc := range []struct {
		name  string
		fonts []string
		id    string // customer, for the locale; "" keeps the sample's (en-GB)
	}{
		{"Zürich Ünïcode Ltd – “Œuvre” €", []string{"/DejaVuSans"}, ""},
		// French amounts group digits with U+202F, drawn by the single-byte font as a
		// no-break space: the amounts are printed, and no second font is embedded.
		{"Société Générale de Test", []string{"/DejaVuSans"}, "paris"},
		{"Łódź Spółka z o.o.", []string{"/DejaVuSans", "/utf8dejavusans"}, ""},
		{"Ελληνική Εταιρεία Α.Ε.", []string{"/DejaVuSans", "/utf8dejavusans"}, ""},
		{"ООО «Москва»", []string{"/DejaVuSans", "/utf8dejavusans"}, ""},
		{"株式会社テスト", []string{"/DejaVuSans", "/utf8droidsansfallback"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := issued(t)
			inv.CustomerName = tc.name
			if tc.id != "" {
				inv.CustomerID = tc.id
			}
			pdf := renderPDF(t, docOptions(), inv)
			if n := bytes.Count(pdf, []byte("/FontFile2")); n != len(tc.fonts) {
				t.Errorf("%d fonts embedded, want %d (%s)", n, len(tc.fonts), strings.Join(tc.fonts, ", "))
			}
			for _, f := range tc.fonts {
				if !bytes.Contains(pdf, []byte("/BaseFont "+f+"\n")) {
					t.Errorf("font %s not embedded", f)
				}
			}
			txt := pdfText(t, pdf)
			if !strings.Contains(txt, tc.name) {
				t.Errorf("text lacks %q", tc.name)
			}
			if tc.id == "paris" && !strings.Contains(txt, "-63,28 €") { // pdftotext: no-break → space
				t.Errorf("French amount missing:\n%s", txt)
			}
		})
	}
}
