// Package etc ships Bilean's sample configuration and policies inside the binary, so that
// `bilean demo` and a first `bilean run` work outside a checkout. The files themselves are the
// documentation of every setting.
package etc

import "embed"

// Files holds bilean.yaml and policies/*.yaml.
//
//go:embed bilean.yaml policies/*.yaml
var Files embed.FS

// DefaultConfig returns the shipped bilean.yaml.
func DefaultConfig() []byte {
	b, err := Files.ReadFile("bilean.yaml")
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}

// Events is the shipped event definitions file: which notifications open, change or close a
// trigger record (bilean listen).
//
//go:embed events.yaml
var Events []byte
