package importer

import (
	"bytes"
	"errors"
	"io"
)

// Bounds on the shape of an import file, checked while it is read, before memory grows with it.
// The bounds on values (lengths, attribute counts, times) are billing's: see billing/limits.go.
const (
	// MaxLineBytes bounds one line: a CSV row (with any line breaks inside its quoted cells),
	// a JSON lines object, a line of YAML.
	MaxLineBytes = 1 << 20
	// MaxColumns bounds the columns of a CSV header.
	MaxColumns = 256
	// MaxYAMLBytes bounds a whole YAML file, which is parsed into memory at once.
	MaxYAMLBytes = 64 << 20
)

// errTooLong is returned by the limiting readers once a bound is crossed.
var errTooLong = errors.New("import line too long")

// rowSlack is what encoding/csv's buffered reader may have read past the row it is parsing.
const rowSlack = 64 << 10

// rowLimiter is the reader under encoding/csv. The caller sets start to the input offset of the
// row about to be read (csv.Reader.InputOffset); once the reader has handed out more than
// MaxLineBytes (plus its read-ahead) past it, Read fails, so one enormous row never reaches
// memory. lines counts the line breaks handed out, for the error's line number.
type rowLimiter struct {
	r      io.Reader
	start  int64
	served int64
	lines  int
	hit    bool
}

func (l *rowLimiter) Read(p []byte) (int, error) {
	room := l.start + MaxLineBytes + rowSlack - l.served
	if room <= 0 {
		l.hit = true
		return 0, errTooLong
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.served += int64(n)
	l.lines += bytes.Count(p[:n], []byte{'\n'})
	return n, err
}

// lineLimiter fails once a line (bytes between line breaks) is longer than max, or the whole
// input longer than total (0: no bound).
type lineLimiter struct {
	r      io.Reader
	max    int
	total  int64
	cur    int // length of the current line so far
	served int64
	lines  int
	hit    string // which bound was crossed
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	if l.hit != "" {
		return 0, errTooLong
	}
	n, err := l.r.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			l.lines++
			l.cur = 0
			continue
		}
		if l.cur++; l.cur > l.max {
			l.hit = "line"
			return 0, errTooLong
		}
	}
	if l.served += int64(n); l.total > 0 && l.served > l.total {
		l.hit = "file"
		return 0, errTooLong
	}
	return n, err
}
