#!/usr/bin/env bash
# Regenerates the fonts embedded in Bilean's PDF invoices from Debian's packages (see fonts.go):
#   DejaVuSans-cp1252.{json,z}  DejaVu Sans (fonts-dejavu-core) cut to the Windows-1252 characters,
#                               as gofpdf's single-byte font definition and compressed font file
#                               (made by ./makefont with gofpdf.MakeFont and cp1252.map, the code
#                               page file shipped with gofpdf). Every PDF embeds it as it is;
#   DejaVuSans.ttf              DejaVu Sans's Latin, IPA, Greek, Cyrillic, punctuation and
#                               currency signs, a UTF-8 font for what Windows-1252 lacks;
#   DroidSansFallback.ttf       from fonts-droid-fallback (Chinese, Japanese, Korean), subset to
#                               its CJK blocks;
#   *.runes                     the code points each font covers, one range a line, which the PDF
#                               renderer reads to pick the font for each character.
# Bold is drawn by stroking the regular glyphs (invoice/render/pdf.go), so no bold face is
# embedded. Hinting, layout tables and the long name records (the license text, shipped here as
# LICENSE-*.txt) are dropped: they only cost time on every document.
# Needs fonttools (Debian: python3-fonttools) and Go. Run from this folder: ./subset.sh
set -euo pipefail
cd "$(dirname "$0")"
py=/usr/bin/python3
command -v "$py" >/dev/null || py=python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dejavu=/usr/share/fonts/truetype/dejavu
droid=/usr/share/fonts-droid-fallback/truetype/DroidSansFallback.ttf
if [ ! -f "$dejavu/DejaVuSans.ttf" ] || [ ! -f "$droid" ]; then
  (cd "$tmp" && apt-get download fonts-dejavu-core fonts-droid-fallback && for d in *.deb; do dpkg-deb -x "$d" x; done)
  dejavu=$tmp/x/usr/share/fonts/truetype/dejavu
  droid=$tmp/x/usr/share/fonts-droid-fallback/truetype/DroidSansFallback.ttf
fi
cp1252=$(awk '$3 != ".notdef" && $2 != "U+0000" {printf "%s%s", sep, $2; sep=","}' cp1252.map)
latin="U+0020-007E,U+00A0-024F,U+0259,U+02B0-02FF,U+0300-036F,U+0370-03FF,U+0400-04FF,U+1E00-1EFF,U+2000-206F,U+20A0-20CF,U+2100-215F,U+2190-2193,U+2212,U+2215,U+2022,U+25CF,U+FFFD"
cjk="U+3000-30FF,U+3100-312F,U+3190-31FF,U+3200-33FF,U+3400-4DBF,U+4E00-9FFF,U+AC00-D7AF,U+1100-11FF,U+3130-318F,U+F900-FAFF,U+FE30-FE4F,U+FF00-FFEF"
opts=(--no-hinting --layout-features= --notdef-outline --drop-tables+=GDEF,GPOS,GSUB,MATH,kern,gasp)
"$py" -m fontTools.subset "$dejavu/DejaVuSans.ttf" --unicodes="$cp1252" --output-file="$tmp/DejaVuSans-cp1252.ttf" "${opts[@]}"
go run ./makefont "$tmp/DejaVuSans-cp1252.ttf" cp1252.map .
cp "$tmp/DejaVuSans-cp1252.ttf" .
"$py" -m fontTools.subset "$dejavu/DejaVuSans.ttf" --unicodes="$latin" --output-file=DejaVuSans.ttf "${opts[@]}"
"$py" -m fontTools.subset "$droid" --unicodes="$cjk" --output-file=DroidSansFallback.ttf "${opts[@]}"
for f in DejaVuSans-cp1252 DejaVuSans DroidSansFallback; do
  "$py" - "$f.ttf" >"$f.runes" <<'PY'
import sys
from fontTools.ttLib import TTFont
cps = sorted(TTFont(sys.argv[1]).getBestCmap())
out, start, prev = [], None, None
for c in cps:
    if start is None:
        start = prev = c
    elif c == prev + 1:
        prev = c
    else:
        out.append((start, prev)); start = prev = c
if start is not None:
    out.append((start, prev))
for a, b in out:
    print("%04X-%04X" % (a, b))
PY
done
rm DejaVuSans-cp1252.ttf # only its .json and .z are embedded
