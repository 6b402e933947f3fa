package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// AcceptedDatabaseURLs names the forms database.url takes, for messages.
const AcceptedDatabaseURLs = "want sqlite:PATH, postgres://…, postgresql://… or a PostgreSQL keyword string (host=… dbname=…)"

// ParseDatabaseURL tells which store a database URL names:
//
//   - sqlite:PATH (or sqlite://PATH): the embedded store in the file PATH → ("sqlite", PATH);
//   - postgres://… or postgresql://…: PostgreSQL → ("postgres", "");
//   - a libpq keyword string such as "host=db dbname=bilean user=bilean": PostgreSQL too.
//
// Anything else is an error naming the accepted forms. An error never quotes the raw string
// (it may hold a password): at most its redacted form (RedactDatabaseURL).
func ParseDatabaseURL(raw string) (driver, path string, err error) {
	s := strings.TrimSpace(raw)
	lower := strings.ToLower(s)
	switch {
	case s == "":
		return "", "", errors.New("empty: " + AcceptedDatabaseURLs)
	case strings.HasPrefix(lower, "sqlite:"):
		p := s[len("sqlite:"):]
		if strings.HasPrefix(p, "//") {
			p = p[2:]
		}
		if p == "" {
			return "", "", errors.New("sqlite: without a file path: want sqlite:PATH, e.g. sqlite:var/bilean.db")
		}
		return "sqlite", p, nil
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			return "", "", errors.New("a postgres:// URL that does not parse (not shown: it may hold a password): check its escaping (a password with @, : or / must be percent-encoded)")
		}
		return "postgres", "", nil
	case looksLikeKeywords(s):
		if _, err := parseKeywords(s); err != nil {
			return "", "", fmt.Errorf("a PostgreSQL keyword string that does not parse (not shown: it may hold a password): %w", err)
		}
		return "postgres", "", nil
	}
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Opaque == "" && strings.Contains(s, "://") {
		return "", "", fmt.Errorf("%s: unsupported store %q: %s", RedactDatabaseURL(s), u.Scheme, AcceptedDatabaseURLs)
	}
	if !strings.ContainsAny(s, ":@=?") {
		// A plain file name cannot hold a credential: name it in the hint.
		return "", "", fmt.Errorf("%q: a bare path is not a store URL: write sqlite:%s for the embedded store (%s)", s, s, AcceptedDatabaseURLs)
	}
	return "", "", errors.New("not a store URL (not shown: it may hold a password): " + AcceptedDatabaseURLs)
}

// RedactDatabaseURL returns the database URL fit for a message or a log: a URL's password (in
// its user part or a password= / sslpassword= parameter) and a keyword string's password= are
// replaced by xxxxx; a string that does not parse as any accepted form is not shown at all.
func RedactDatabaseURL(raw string) string {
	s := strings.TrimSpace(raw)
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "sqlite:"):
		return s
	case looksLikeKeywords(s):
		kvs, err := parseKeywords(s)
		if err != nil {
			return "(a PostgreSQL keyword string that does not parse, not shown)"
		}
		parts := make([]string, len(kvs))
		for i, kv := range kvs {
			v := kv.value
			if isSecretKey(kv.key) {
				v = "xxxxx"
			}
			parts[i] = kv.key + "=" + quoteKeywordValue(v)
		}
		return strings.Join(parts, " ")
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || !strings.Contains(s, "://") {
		if !strings.ContainsAny(s, ":@=?") {
			return s
		}
		return "(a database URL that does not parse, not shown)"
	}
	if q := u.Query(); len(q) > 0 {
		changed := false
		for k := range q {
			if isSecretKey(k) {
				q.Set(k, "xxxxx")
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	return k == "password" || k == "sslpassword"
}

// looksLikeKeywords reports whether s starts like a libpq keyword/value string: a keyword
// (letters, digits, underscores) followed by optional spaces and "=".
func looksLikeKeywords(s string) bool {
	i := 0
	for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || i > 0 && s[i] >= '0' && s[i] <= '9') {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i < len(s) && s[i] == '='
}

type keywordValue struct{ key, value string }

// parseKeywords reads a libpq keyword/value string: keyword = value pairs separated by
// whitespace, a value single-quoted when it holds spaces, with \' and \\ escapes. Errors never
// quote a value.
func parseKeywords(s string) ([]keywordValue, error) {
	var out []keywordValue
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			break
		}
		start := i
		for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
			i++
		}
		key := s[start:i]
		if key == "" {
			return nil, fmt.Errorf("pair %d: want keyword=value", len(out)+1)
		}
		skip()
		if i >= len(s) || s[i] != '=' {
			return nil, fmt.Errorf("keyword %q without =value", key)
		}
		i++
		skip()
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					v.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '\'' {
					closed = true
					i++
					break
				}
				v.WriteByte(c)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("the value of %s has no closing quote", key)
			}
		} else {
			for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
				i++
			}
		}
		out = append(out, keywordValue{key, v.String()})
	}
	if len(out) == 0 {
		return nil, errors.New("no keyword=value pair")
	}
	return out, nil
}

// quoteKeywordValue writes a value as a keyword string does: quoted when empty or when it holds
// spaces, quotes or backslashes.
func quoteKeywordValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
