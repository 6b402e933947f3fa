package fonts

import (
	"strings"
	"testing"
	"unicode"
)

func TestCoverage(t *testing.T) {
	for _, tc := range []struct {
		font *Font
		has  string
		lack string
	}{
		// Latin has what Western invoices use, in one byte each: it is embedded in every PDF.
		{Latin, "AZaz09 Zürich Ünïcode Ltd €£¥ – “quoted” … Œuvre Škoda · ™ \u00a0", "ŁőșΩЖ株\uFFFD"},
		{Unicode, "Łódź Őrs Ştefan Ελλάδα Москва Tiếng Việt ǅ ə \u202f₹₩\uFFFD", "株"},
		{CJK, "株式会社テストカブシキガイシャ한국어年月日", "Aü"},
	} {
		for _, r := range tc.has {
			if !tc.font.Has(r) {
				t.Errorf("%s lacks %q (U+%04X)", tc.font.Name, r, r)
			}
		}
		for _, r := range tc.lack {
			if tc.font.Has(r) {
				t.Errorf("%s claims %q (U+%04X)", tc.font.Name, r, r)
			}
		}
		if len(tc.font.TTF)+len(tc.font.Z) < 1000 {
			t.Errorf("%s: %d bytes embedded", tc.font.Name, len(tc.font.TTF)+len(tc.font.Z))
		}
	}
}

// TestChain checks that every character goes to the first font that has it.
func TestChain(t *testing.T) {
	for _, tc := range []struct {
		r    rune
		want int
	}{{'a', 0}, {'ü', 0}, {'€', 0}, {'–', 0}, {'Ł', 1}, {'Ω', 1}, {'Ж', 1}, {'ệ', 1}, {'\u202f', 0}, {'\uFFFD', 1}, {'株', 2}, {'テ', 2}, {'한', 2}, {'\U0001F600', -1}} {
		if got := For(tc.r); got != tc.want {
			t.Errorf("For(%q) = %d, want %d", tc.r, got, tc.want)
		}
	}
}

// TestEncode checks the Windows-1252 bytes of the single-byte font against the code page.
func TestEncode(t *testing.T) {
	if !Latin.SingleByte() || Unicode.SingleByte() || CJK.SingleByte() {
		t.Fatal("only Latin is a single-byte font")
	}
	for in, want := range map[string]string{
		"Zürich €5 – “ok” …": "Z\xfcrich \x805 \x96 \x93ok\x94 \x85",
		"Œuvre Škoda ™":      "\x8cuvre \x8akoda \x99",
		"a\u00a0b":           "a\xa0b",
		"1\u202f234,56":      "1\xa0234,56", // French grouping: drawn as a no-break space
	} {
		if got := Latin.Encode(in); got != want {
			t.Errorf("Encode(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Unicode.Encode("Ελλάδα"); got != "Ελλάδα" {
		t.Errorf("a UTF-8 font changed the text: %q", got)
	}
	// The font has a glyph for every character of the code page, and the code page a byte
	// for every glyph: none is drawn as "?" or as an empty box.
	for _, r16 := range Latin.Covers.R16 {
		for r := rune(r16.Lo); r <= rune(r16.Hi); r++ {
			if !Latin.Has(r) {
				t.Errorf("the Latin font has a glyph for U+%04X but no byte", r)
			}
		}
	}
	for r := range Latin.code {
		if _, alias := aliases[r]; !alias && !unicode.Is(Latin.Covers, r) {
			t.Errorf("Windows-1252 has U+%04X but the Latin font has no glyph for it", r)
		}
	}
}

func TestParseRangesErrors(t *testing.T) {
	for _, in := range []string{"zz-41", "0041", "0042-0041", "0041-0042\n0040-0040"} {
		if _, err := parseRanges(in); err == nil {
			t.Errorf("parseRanges(%q): no error", in)
		}
	}
}

func TestParseCodePageErrors(t *testing.T) {
	for _, in := range []string{"!E9 U+00E9", "E9 U+00E9 eacute", "!ZZ U+00E9 eacute", "!E9 00E9 eacute", "!E9 U+XYZ eacute"} {
		if _, err := parseCodePage(in); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("parseCodePage(%q): %v, want an error naming line 1", in, err)
		}
	}
}
