package jobfile_test

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/jobfile"
)

// genReader produces a file of n rows on the fly, so that the file is never
// held in memory and only the Reader's own use of memory is measured.
type genReader struct {
	n, i  int
	row   func(i int) string
	buf   []byte
	off   int
	total int64 // bytes produced so far
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off == len(g.buf) {
		if g.i == g.n {
			return 0, io.EOF
		}
		g.buf = append(g.buf[:0], g.row(g.i)...)
		g.off = 0
		g.i++
	}
	n := copy(p, g.buf[g.off:])
	g.off += n
	g.total += int64(n)
	return n, nil
}

// heapInUse returns the bytes of heap in use after a garbage collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// checkMemory reads every row of gen, checking that each is valid and on
// line lineOf(its index), and that the heap in use stays under a small bound
// throughout, whatever the size of the file.
func checkMemory(t *testing.T, gen *genReader, f jobfile.Format, rows int, lineOf func(int) int) {
	if testing.Short() {
		t.Skip("reads a file of several tens of megabytes")
	}
	const bound = 16 << 20
	rd, err := jobfile.NewReader(gen, f)
	if err != nil {
		t.Fatal(err)
	}
	var peak uint64
	n := 0
	for {
		row, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if row.Err != nil || row.Line != lineOf(n) {
			t.Fatalf("row %d: line %d, want %d; %v", n, row.Line, lineOf(n), row.Err)
		}
		n++
		if n%20_000 == 0 {
			peak = max(peak, heapInUse())
		}
	}
	peak = max(peak, heapInUse())
	if n != rows {
		t.Fatalf("read %d rows, want %d", n, rows)
	}
	if gen.total < 2*bound {
		t.Fatalf("the file is only %d bytes; the test needs one well above the bound", gen.total)
	}
	t.Logf("%d rows, %d MiB read, peak heap in use %.1f MiB", n, gen.total>>20, float64(peak)/(1<<20))
	if peak > bound {
		t.Errorf("heap in use reached %d bytes reading %d rows, more than %d: memory grows with the file", peak, n, bound)
	}
}

func TestMemoryJSONL(t *testing.T) {
	const rows = 200_000
	gen := &genReader{n: rows, row: func(i int) string { return jobLine(i) + "\n" }}
	checkMemory(t, gen, jobfile.JSONL, rows, func(i int) int { return i + 1 })
}

func TestMemoryCSV(t *testing.T) {
	const rows = 200_000
	pad := strings.Repeat("long instructions ", 8)
	gen := &genReader{n: rows + 1, row: func(i int) string {
		if i == 0 {
			return csvHeader + "\r\n"
		}
		return fmt.Sprintf("%d,Reply START,START,\"Order updates,\r\nand alerts\",Reply STOP,%s\r\n", i, pad)
	}}
	// Every row takes two lines, after the header.
	checkMemory(t, gen, jobfile.CSV, rows, func(i int) int { return 2 + 2*i })
}
