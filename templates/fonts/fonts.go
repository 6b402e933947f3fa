// Package fonts embeds the fonts of Bilean's PDF invoices, as a fallback chain (Chain) tried
// character by character:
//
//   - Latin: DejaVu Sans for the Windows-1252 characters (ASCII, Western European letters, €,
//     dashes, quotes, …), as a single-byte TrueType font: its font file is compressed once,
//     here, and embedded as it is, so it costs a PDF next to nothing. Ordinary invoices need
//     no other font.
//   - Unicode: DejaVu Sans's Latin, IPA, Greek and Cyrillic as a UTF-8 font, which the PDF
//     library parses and cuts to the glyphs used, on every document that needs it.
//   - CJK: Droid Sans Fallback for Chinese, Japanese and Korean, likewise.
//
// All are subsets of Debian's fonts-dejavu-core and fonts-droid-fallback made by subset.sh;
// their licenses are the LICENSE-*.txt files next to them. cp1252.map, the Windows-1252 code
// page, is the file shipped with gofpdf (MIT license).
package fonts

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

var (
	//go:embed DejaVuSans-cp1252.json
	latinDef []byte
	//go:embed DejaVuSans-cp1252.z
	latinZ []byte
	//go:embed DejaVuSans-cp1252.runes
	latinRunes string
	//go:embed cp1252.map
	cp1252Map string
	//go:embed DejaVuSans.ttf
	unicodeTTF []byte
	//go:embed DejaVuSans.runes
	unicodeRunes string
	//go:embed DroidSansFallback.ttf
	cjkTTF []byte
	//go:embed DroidSansFallback.runes
	cjkRunes string
)

// Font is one embedded font and the characters it has glyphs for. It is either a UTF-8 font
// (TTF set) or a single-byte font (Def and Z set) whose text must be Encoded. Callers must not
// modify the byte slices.
type Font struct {
	// Name is the font's family name as the PDF renderer registers it.
	Name string
	// TTF is the TrueType file of a UTF-8 font.
	TTF []byte
	// Def and Z are the font definition (JSON) and the zlib-compressed TrueType file of a
	// single-byte font, as gofpdf.MakeFont writes them and AddFontFromBytes reads them.
	Def, Z []byte
	// Covers reports the characters the font draws.
	Covers *unicode.RangeTable
	// code maps the characters of a single-byte font to their bytes.
	code map[rune]byte
	// asciiSame says code maps every printable ASCII character to its own byte (Encode's fast
	// path).
	asciiSame bool
}

// Has reports whether the font draws r.
func (f *Font) Has(r rune) bool {
	if f.code != nil {
		_, ok := f.code[r]
		return ok
	}
	return unicode.Is(f.Covers, r)
}

// SingleByte reports whether text in f must be Encoded and the font added with Def and Z.
func (f *Font) SingleByte() bool { return f.code != nil }

// Encode returns s as the bytes a single-byte font draws (s itself for a UTF-8 font).
// Characters the font lacks become "?": pick fonts with Has first.
func (f *Font) Encode(s string) string {
	if f.code == nil {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r >= 0x20 && r < 0x7f && f.asciiSame {
			b = append(b, byte(r))
			continue
		}
		c, ok := f.code[r]
		if !ok {
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
}

// The embedded fonts. Their coverage is read from the embedded .runes files once, when the
// package loads.
var (
	Latin   = &Font{Name: "DejaVuSans-cp1252", Def: latinDef, Z: latinZ, Covers: mustRanges("DejaVuSans-cp1252.runes", latinRunes), code: withAliases(mustCodePage("cp1252.map", cp1252Map))}
	Unicode = &Font{Name: "DejaVuSans", TTF: unicodeTTF, Covers: mustRanges("DejaVuSans.runes", unicodeRunes)}
	CJK     = &Font{Name: "DroidSansFallback", TTF: cjkTTF, Covers: mustRanges("DroidSansFallback.runes", cjkRunes)}
)

// Chain is the order in which fonts are tried for a character: the first that has it draws it.
var Chain = []*Font{Latin, Unicode, CJK}

func init() {
	for _, f := range Chain {
		if f.code == nil {
			continue
		}
		f.asciiSame = true
		for r := rune(0x20); r < 0x7f; r++ {
			if c, ok := f.code[r]; !ok || rune(c) != r {
				f.asciiSame = false
			}
		}
	}
}

// asciiFont caches For for the ASCII characters that make up almost all of an invoice.
var asciiFont = func() (t [128]int8) {
	for r := range t {
		t[r] = int8(lookup(rune(r)))
	}
	return t
}()

// For returns the index in Chain of the font that draws r, or -1 when none has it.
func For(r rune) int {
	if r >= 0 && r < 128 {
		return int(asciiFont[r])
	}
	return lookup(r)
}

func lookup(r rune) int {
	for i, f := range Chain {
		if f.Has(r) {
			return i
		}
	}
	return -1
}

// aliases are characters a single-byte font draws with another character's glyph: French
// amounts group digits with a narrow no-break space (U+202F), which Windows-1252 lacks; drawing
// it as a no-break space keeps every French invoice on the single-byte font (a PDF extracts it
// as U+00A0).
var aliases = map[rune]rune{'\u202f': '\u00a0'}

func withAliases(code map[rune]byte) map[rune]byte {
	for r, as := range aliases {
		if c, ok := code[as]; ok {
			code[r] = c
		}
	}
	return code
}

func mustCodePage(name, text string) map[rune]byte {
	m, err := parseCodePage(text)
	if err != nil {
		panic(fmt.Sprintf("fonts: %s: %v", name, err)) // embedded at build time; a test reads it
	}
	return m
}

// parseCodePage reads a gofpdf code page map: lines "!E9 U+00E9 eacute" (byte, character,
// glyph name). Bytes without a character (".notdef") are left out.
func parseCodePage(text string) (map[rune]byte, error) {
	m := make(map[rune]byte, 256)
	for n, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || !strings.HasPrefix(f[0], "!") || !strings.HasPrefix(f[1], "U+") {
			return nil, fmt.Errorf("line %d: %q: want \"!E9 U+00E9 eacute\"", n+1, line)
		}
		c, err1 := strconv.ParseUint(f[0][1:], 16, 8)
		r, err2 := strconv.ParseUint(f[1][2:], 16, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("line %d: %q: want \"!E9 U+00E9 eacute\"", n+1, line)
		}
		if f[2] != ".notdef" {
			m[rune(r)] = byte(c)
		}
	}
	return m, nil
}

func mustRanges(name, text string) *unicode.RangeTable {
	t, err := parseRanges(text)
	if err != nil {
		panic(fmt.Sprintf("fonts: %s: %v", name, err)) // embedded at build time; a test reads them
	}
	return t
}

// parseRanges reads lines "0020-007E" (hexadecimal, inclusive, ascending).
func parseRanges(text string) (*unicode.RangeTable, error) {
	t := &unicode.RangeTable{}
	sc := bufio.NewScanner(bytes.NewReader([]byte(text)))
	n := 0
	var last uint64
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		a, b, ok := strings.Cut(line, "-")
		lo, err1 := strconv.ParseUint(a, 16, 32)
		hi, err2 := strconv.ParseUint(b, 16, 32)
		if !ok || err1 != nil || err2 != nil || hi < lo || (len(t.R16)+len(t.R32) > 0 && lo <= last) {
			return nil, fmt.Errorf("line %d: %q: want an ascending range such as 0020-007E", n, line)
		}
		last = hi
		for lo <= hi {
			if lo <= 0xFFFF {
				top := min(hi, 0xFFFF)
				t.R16 = append(t.R16, unicode.Range16{Lo: uint16(lo), Hi: uint16(top), Stride: 1})
				if top < 0x100 {
					t.LatinOffset++
				}
				lo = top + 1
				continue
			}
			t.R32 = append(t.R32, unicode.Range32{Lo: uint32(lo), Hi: uint32(hi), Stride: 1})
			break
		}
	}
	return t, sc.Err()
}
