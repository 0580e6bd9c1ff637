// Package secret holds credentials (API keys, tokens) in a string type that
// never prints, so that configuration and the Kaleyra client can pass a key
// around without it reaching a log by accident.
package secret

import (
	"fmt"
	"io"
)

// Redacted is what a String prints as, whatever the verb or encoder. Code
// that scrubs a secret out of other text replaces it with this too.
const Redacted = "[redacted]"

// String holds a credential such as Kaleyra's API key. It prints as
// "[redacted]" through fmt (%v, %+v, %#v, %s, %q, ...), as a JSON value and
// through encoding.TextMarshaler, so that a key can never reach a log by
// accident; only Reveal returns the value.
//
// fmt cannot call methods on unexported struct fields, so a struct that holds
// a String must keep it in an exported field or behind a pointer.
type String string

// Reveal returns the secret value, for the one place that must send it.
func (s String) Reveal() string { return string(s) }

// String returns "[redacted]".
func (String) String() string { return Redacted }

// GoString returns "[redacted]", so that %#v hides the value too.
func (String) GoString() string { return Redacted }

// Format writes "[redacted]" for every verb (quoted for %q), so that no verb,
// not even %x, prints the value.
func (String) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		io.WriteString(f, `"`+Redacted+`"`)
		return
	}
	io.WriteString(f, Redacted)
}

// MarshalJSON returns the JSON string "[redacted]".
func (String) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns "[redacted]".
func (String) MarshalText() ([]byte, error) { return []byte(Redacted), nil }
