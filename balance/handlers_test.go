package balance

// The balance runs the interim chain; in the binary cmd/bilean registers its handlers, here the
// tests do.
import _ "github.com/bilean/bilean/handlers"
