package jobfile_test

import (
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/jobfile"
)

// BenchmarkJSONLRow is the cost of reading one JSONL row: line splitting,
// strict parsing and validation (per row; the file is generated on the fly).
func BenchmarkJSONLRow(b *testing.B) {
	gen := &genReader{n: 1 << 30, row: func(i int) string { return jobLine(48900+i%1000) + "\n" }}
	rd, err := jobfile.NewReader(gen, jobfile.JSONL)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		row, err := rd.Next()
		if err != nil || row.Err != nil {
			b.Fatal(err, row.Err)
		}
	}
}

// BenchmarkCSVRow is the same for one CSV row.
func BenchmarkCSVRow(b *testing.B) {
	gen := &genReader{n: 1 << 30, row: func(i int) string {
		if i == 0 {
			return csvHeader + "\n"
		}
		return csvRow(48900+i%1000) + "\n"
	}}
	rd, err := jobfile.NewReader(gen, jobfile.CSV)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		row, err := rd.Next()
		if err != nil || row.Err != nil {
			b.Fatal(err, row.Err)
		}
	}
}
