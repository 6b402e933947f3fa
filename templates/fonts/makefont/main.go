// Command makefont writes the font definition (.json) and compressed font file (.z) of a
// single-byte TrueType font with gofpdf.MakeFont, for templates/fonts. subset.sh runs it:
//
//	go run ./makefont FONT.ttf CODEPAGE.map OUTDIR
package main

import (
	"fmt"
	"os"

	"github.com/jung-kurt/gofpdf"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: makefont FONT.ttf CODEPAGE.map OUTDIR")
		os.Exit(2)
	}
	if err := gofpdf.MakeFont(os.Args[1], os.Args[2], os.Args[3], nil, true); err != nil {
		fmt.Fprintf(os.Stderr, "makefont %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
