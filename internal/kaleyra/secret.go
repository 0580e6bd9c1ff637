package kaleyra

import (
	"fmt"
	"io"
)

// redacted is what a Secret prints as, whatever the verb or encoder.
const redacted = "[redacted]"

// Secret holds a credential such as Kaleyra's API key. It prints as
// "[redacted]" through fmt (%v, %+v, %#v, %s, %q, ...), as a JSON value and
// through encoding.TextMarshaler, so that a key can never reach a log by
// accident; only Reveal returns the value.
//
// fmt cannot call methods on unexported struct fields, so a struct that holds
// a Secret must keep it in an exported field or behind a pointer.
type Secret string

// Reveal returns the secret value, for the one place that must send it.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]", so that %#v hides the value too.
func (Secret) GoString() string { return redacted }

// Format writes "[redacted]" for every verb (quoted for %q), so that no verb,
// not even %x, prints the value.
func (Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		io.WriteString(f, `"`+redacted+`"`)
		return
	}
	io.WriteString(f, redacted)
}

// MarshalJSON returns the JSON string "[redacted]".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[redacted]".
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
