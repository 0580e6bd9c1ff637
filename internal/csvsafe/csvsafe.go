// Package csvsafe writes CSV that a spreadsheet opens as data. Spreadsheet
// programs take a cell that starts with = + - @, a tab or a carriage return
// as a formula, so a text from outside (an agent number, Kaleyra's message)
// could run one in the operator's spreadsheet (CSV injection). Every CSV
// rcslaunch writes goes through Writer, which gives such a cell a leading
// single quote, as OWASP advises: the spreadsheet shows the text, and a
// program gets the original back by removing that one quote.
package csvsafe

import (
	"encoding/csv"
	"io"
	"strings"
)

// formulaStarts are the first characters that make a cell a formula.
const formulaStarts = "=+-@\t\r"

// Cell is s as a CSV cell that no spreadsheet takes for a formula: s with a
// leading single quote when it starts with one of = + - @ tab CR, s as it
// is otherwise. An agent number "+15550001" becomes "'+15550001".
func Cell(s string) string {
	if s != "" && strings.IndexByte(formulaStarts, s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// Writer is a csv.Writer whose every cell goes through Cell.
type Writer struct {
	w   *csv.Writer
	row []string
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: csv.NewWriter(w)} }

// Write writes one row.
func (w *Writer) Write(cells []string) error {
	w.row = w.row[:0]
	for _, c := range cells {
		w.row = append(w.row, Cell(c))
	}
	return w.w.Write(w.row)
}

// Flush writes any buffered rows and returns the first error of any write.
func (w *Writer) Flush() error {
	w.w.Flush()
	return w.w.Error()
}
