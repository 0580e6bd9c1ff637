package jobfile_test

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/jobfile"
	"github.com/rcslaunch/rcslaunch/launch"
)

// chunkSizes are the (size, workers) pairs the Chunks tests read with: size
// 1, sizes that do and do not divide the files' row counts, sizes larger
// than the files, the inline path (workers 1) and the decoding goroutines.
var chunkSizes = []struct{ size, workers int }{
	{1, 1}, {1, 4}, {2, 1}, {2, 4}, {3, 4}, {5, 2}, {7, 1}, {7, 4}, {64, 4}, {10000, 1}, {10000, 4},
}

// chunkJSONL is a JSONL file with every kind of line: a BOM and \r\n, blank
// lines, valid jobs, a job that fails validation, invalid JSON, lines over
// the limit (one fitting the read buffer, one spanning several) and a last
// line without line ending.
func chunkJSONL(t *testing.T) (string, []want) {
	t.Helper()
	const max = launch.MaxJobBytes
	tooLong := func(n int) string { return fmt.Sprintf("line is %d bytes, more than the %d allowed", n, max) }
	input := strings.Join([]string{
		"\ufeff" + jobLine(1) + "\r",  // 1
		"",                            // 2
		"   \t ",                      // 3
		jobLine(4),                    // 4
		`{"launch":{"agent_no":"5"}}`, // 5
		`{"launch":{}`,                // 6
		padded(t, 7, max+1),           // 7
		jobLine(8),                    // 8
		padded(t, 9, 3*max) + "\r",    // 9
		"",                            // 10
		jobLine(11),                   // 11
		`not json`,                    // 12
		strings.Repeat(" ", max+5),    // 13: blank but too long
		jobLine(14),                   // 14
	}, "\n")
	return input, []want{
		{line: 1, agent: "1"},
		{line: 4, agent: "4"},
		{line: 5, field: "launch.optin_description", reason: "is required"},
		{line: 6, reason: "invalid JSON: unexpected end of input"},
		{line: 7, reason: tooLong(max + 1)},
		{line: 8, agent: "8"},
		{line: 9, reason: tooLong(3 * max)},
		{line: 11, agent: "11"},
		{line: 12, reason: "invalid JSON: invalid character 'o'"},
		{line: 13, reason: tooLong(max + 5)},
		{line: 14, agent: "14"},
	}
}

// chunkCSV is a CSV file with blank rows, a quoted cell over several lines,
// rows with the wrong number of cells, invalid CSV and a row failing
// validation.
func chunkCSV() (string, []want) {
	input := "\ufeff" + strings.Join([]string{
		csvHeader, // 1
		csvRow(1), // 2
		"",        // 3
		csvRow(3), // 4
		`4,"Opt in, then ""START""",START,"Order updates`, // 5
		`and delivery alerts",Reply STOP,"Multi`,          // 6
		``,                                                // 7
		`line"`,                                           // 8
		`,,,,,`,                                           // 9
		`10,a,b,c,d`,                                      // 10
		`11,a,b,c,d,e,f`,                                  // 11
		`12,bare "quote,b,c,d,e`,                          // 12
		`13,a,,c,d,e`,                                     // 13
		csvRow(14),                                        // 14
		csvRow(15),                                        // 15
	}, "\r\n") + "\r\n"
	return input, []want{
		{line: 2, agent: "1"},
		{line: 4, agent: "3"},
		{line: 5, agent: "4"},
		{line: 10, reason: "row has 5 cells, the header has 6 columns"},
		{line: 11, reason: "row has 7 cells, the header has 6 columns"},
		{line: 12, reason: `invalid CSV: bare " in non-quoted-field`},
		{line: 13, field: "launch.trigger_description", reason: "is required"},
		{line: 14, agent: "14"},
		{line: 15, agent: "15"},
	}
}

// bigJSONL is a JSONL file of n rows in which blank, invalid and over-long
// lines recur, for reading many chunks ahead.
func bigJSONL(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		switch {
		case i%97 == 0:
			b.WriteString(padded(t, i, launch.MaxJobBytes+i%3))
		case i%11 == 0:
			b.WriteString("  ")
		case i%7 == 0:
			fmt.Fprintf(&b, `{"launch":{"agent_no":"%d"}}`, i)
		case i%13 == 0:
			b.WriteString(`{"id":"bad id!",` + jobLine(i)[1:])
		default:
			b.WriteString(jobLine(i))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// bigCSV is the same for CSV.
func bigCSV(n int) string {
	var b strings.Builder
	b.WriteString(csvHeader + "\n")
	for i := 2; i <= n; i++ {
		switch {
		case i%11 == 0:
			b.WriteString(",,,,,")
		case i%7 == 0:
			fmt.Fprintf(&b, "%d,a,,c,d,e", i)
		case i%13 == 0:
			fmt.Fprintf(&b, "%d,a,b", i)
		default:
			b.WriteString(csvRow(i))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// readChunks reads r with Chunks, keeping a copy of every chunk fn gets.
func readChunks(t *testing.T, r io.Reader, f jobfile.Format, size, workers int) ([][]jobfile.Row, error) {
	t.Helper()
	rd, err := jobfile.NewReader(r, f)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var chunks [][]jobfile.Row
	err = rd.Chunks(size, workers, func(rows []jobfile.Row) error {
		chunks = append(chunks, slices.Clone(rows))
		return nil
	})
	return chunks, err
}

// checkChunks fails unless the chunks hold exactly the rows want, in order,
// each chunk size rows but the last, which may be shorter (and not empty).
func checkChunks(t *testing.T, chunks [][]jobfile.Row, size int, want []jobfile.Row) {
	t.Helper()
	var all []jobfile.Row
	for i, c := range chunks {
		if len(c) == 0 || len(c) > size || (i < len(chunks)-1 && len(c) != size) {
			t.Errorf("chunk %d of %d has %d rows; want %d, or 1 to %d for the last", i, len(chunks), len(c), size, size)
		}
		all = append(all, c...)
	}
	if want := (len(want) + size - 1) / size; len(chunks) != want {
		t.Errorf("%d chunks, want %d", len(chunks), want)
	}
	if len(all) != len(want) {
		t.Fatalf("chunks hold %d rows, Next reads %d", len(all), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(all[i], want[i]) {
			t.Fatalf("row %d from the chunks:\n%+v (%v)\nNext reads:\n%+v (%v)", i, all[i], all[i].Err, want[i], want[i].Err)
		}
	}
}

func TestChunksMatchNext(t *testing.T) {
	jsonl, jsonlWants := chunkJSONL(t)
	csvData, csvWants := chunkCSV()
	for _, tc := range []struct {
		name   string
		format jobfile.Format
		input  string
		wants  []want // nil: not checked here (Next's own tests cover it)
	}{
		{"jsonl", jobfile.JSONL, jsonl, jsonlWants},
		{"csv", jobfile.CSV, csvData, csvWants},
		{"big jsonl", jobfile.JSONL, bigJSONL(t, 500), nil},
		{"big csv", jobfile.CSV, bigCSV(500), nil},
	} {
		rows := readAll(t, strings.NewReader(tc.input), tc.format)
		if tc.wants != nil {
			check(t, rows, tc.wants) // the reference itself
		}
		for _, sw := range chunkSizes {
			t.Run(fmt.Sprintf("%s/size=%d/workers=%d", tc.name, sw.size, sw.workers), func(t *testing.T) {
				chunks, err := readChunks(t, strings.NewReader(tc.input), tc.format, sw.size, sw.workers)
				if err != nil {
					t.Fatalf("Chunks = %v", err)
				}
				checkChunks(t, chunks, sw.size, rows)
				if tc.wants != nil {
					var all []jobfile.Row
					for _, c := range chunks {
						all = append(all, c...)
					}
					check(t, all, tc.wants)
				}
			})
		}
	}
}

// TestChunksReadsTheRest checks that Chunks goes on where Next stopped, and
// that the Reader is at its end afterwards.
func TestChunksReadsTheRest(t *testing.T) {
	jsonl, _ := chunkJSONL(t)
	csvData, _ := chunkCSV()
	for _, tc := range []struct {
		format jobfile.Format
		input  string
	}{{jobfile.JSONL, jsonl}, {jobfile.CSV, csvData}} {
		all := readAll(t, strings.NewReader(tc.input), tc.format)
		for _, workers := range []int{1, 4} {
			rd, err := jobfile.NewReader(strings.NewReader(tc.input), tc.format)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if row, err := rd.Next(); err != nil || !reflect.DeepEqual(row, all[i]) {
					t.Fatalf("%s: Next %d = %+v, %v", tc.format, i, row, err)
				}
			}
			var chunks [][]jobfile.Row
			err = rd.Chunks(2, workers, func(rows []jobfile.Row) error {
				chunks = append(chunks, slices.Clone(rows))
				return nil
			})
			if err != nil {
				t.Fatalf("%s workers %d: Chunks = %v", tc.format, workers, err)
			}
			checkChunks(t, chunks, 2, all[3:])
			for range 2 {
				if row, err := rd.Next(); err != io.EOF {
					t.Fatalf("%s workers %d: Next after Chunks = %+v, %v; want io.EOF", tc.format, workers, row, err)
				}
			}
		}
	}
}

func TestChunksEmptyFile(t *testing.T) {
	for _, tc := range []struct {
		format jobfile.Format
		input  string
	}{
		{jobfile.JSONL, ""},
		{jobfile.JSONL, "\ufeff"},
		{jobfile.JSONL, "\n\n  \r\n\t\n"},
		{jobfile.CSV, csvHeader},
		{jobfile.CSV, csvHeader + "\n"},
		{jobfile.CSV, csvHeader + "\n,,,,,\n\n , ,,,,\n"},
	} {
		for _, sw := range chunkSizes {
			calls := 0
			rd, err := jobfile.NewReader(strings.NewReader(tc.input), tc.format)
			if err != nil {
				t.Fatal(err)
			}
			err = rd.Chunks(sw.size, sw.workers, func(rows []jobfile.Row) error {
				calls++
				return nil
			})
			if err != nil || calls != 0 {
				t.Errorf("%s %q size %d workers %d: Chunks = %v after %d calls of fn; want nil after none",
					tc.format, tc.input, sw.size, sw.workers, err, calls)
			}
		}
	}
}

// TestChunksFnErrorStops checks that the first error fn returns ends the
// reading and is returned, with fn not called again.
func TestChunksFnErrorStops(t *testing.T) {
	const n = 40
	var jsonl, csvData strings.Builder
	csvData.WriteString(csvHeader + "\n")
	for i := 1; i <= n; i++ {
		jsonl.WriteString(jobLine(i) + "\n")
		csvData.WriteString(csvRow(i) + "\n")
	}
	stop := errors.New("fn says stop")
	for _, tc := range []struct {
		format jobfile.Format
		input  string
	}{{jobfile.JSONL, jsonl.String()}, {jobfile.CSV, csvData.String()}} {
		all := readAll(t, strings.NewReader(tc.input), tc.format)
		if len(all) != n {
			t.Fatalf("%s: %d rows", tc.format, len(all))
		}
		for _, sw := range chunkSizes {
			last := (n + sw.size - 1) / sw.size
			for _, stopAt := range slices.Compact([]int{1, min(2, last), last}) {
				rd, err := jobfile.NewReader(strings.NewReader(tc.input), tc.format)
				if err != nil {
					t.Fatal(err)
				}
				var chunks [][]jobfile.Row
				calls := 0
				err = rd.Chunks(sw.size, sw.workers, func(rows []jobfile.Row) error {
					calls++
					chunks = append(chunks, slices.Clone(rows))
					if calls == stopAt {
						return stop
					}
					return nil
				})
				if err != stop || calls != stopAt {
					t.Fatalf("%s size %d workers %d, fn failing on call %d: Chunks = %v after %d calls; want fn's error after %d",
						tc.format, sw.size, sw.workers, stopAt, err, calls, stopAt)
				}
				checkChunks(t, chunks, sw.size, all[:min(stopAt*sw.size, n)])
			}
		}
	}
}

// chunksGoroutines counts the goroutines that are running Chunks or one of
// the goroutines it started.
func chunksGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "jobfile.(*Reader).Chunks") {
			count++
		}
	}
	return count
}

// TestChunksFnErrorLeavesNoGoroutine stops the reading many times, at
// every point of a small file, and checks that no goroutine Chunks started
// is left behind (and, with -race, that stopping races with nothing).
func TestChunksFnErrorLeavesNoGoroutine(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= 12; i++ {
		b.WriteString(jobLine(i) + "\n")
	}
	input := b.String()
	stop := errors.New("stop")
	for i := range 200 {
		size, workers := 1+i%3, []int{2, 4, 8}[i%3]
		stopAt := 1 + i%(12/size)
		rd, err := jobfile.NewReader(strings.NewReader(input), jobfile.JSONL)
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		err = rd.Chunks(size, workers, func(rows []jobfile.Row) error {
			calls++
			if calls == stopAt {
				return stop
			}
			return nil
		})
		if err != stop || calls != stopAt {
			t.Fatalf("run %d: Chunks = %v after %d calls, want %v after %d", i, err, calls, stop, stopAt)
		}
	}
	// Chunks waits for its decoders; its reader goroutine may still be on
	// its way out when Chunks returns, but must end without help.
	deadline := time.Now().Add(10 * time.Second)
	for chunksGoroutines() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of Chunks still running after it returned", chunksGoroutines())
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// TestChunksReadError checks that a fatal read error is returned, as Next
// returns it, once fn has had every row before it.
func TestChunksReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	jsonl, _ := chunkJSONL(t)
	csvData, _ := chunkCSV()
	for _, tc := range []struct {
		format jobfile.Format
		data   string
	}{
		{jobfile.JSONL, jsonl + "\n" + jobLine(99)[:20]},
		{jobfile.JSONL, bigJSONL(t, 300)},
		{jobfile.CSV, csvData + csvRow(99)[:5]},
		{jobfile.CSV, csvData + "\"99,unterminated"},
		{jobfile.CSV, bigCSV(300)},
	} {
		// What Next reads: every row, then the error.
		rd, err := jobfile.NewReader(&failingReader{[]byte(tc.data), boom}, tc.format)
		if err != nil {
			t.Fatal(err)
		}
		var want []jobfile.Row
		var nextErr error
		for {
			row, err := rd.Next()
			if err != nil {
				nextErr = err
				break
			}
			want = append(want, row)
		}
		if !errors.Is(nextErr, boom) || len(want) < 5 {
			t.Fatalf("%s: Next reads %d rows, then %v", tc.format, len(want), nextErr)
		}
		for _, sw := range chunkSizes {
			rd, err := jobfile.NewReader(&failingReader{[]byte(tc.data), boom}, tc.format)
			if err != nil {
				t.Fatal(err)
			}
			var chunks [][]jobfile.Row
			err = rd.Chunks(sw.size, sw.workers, func(rows []jobfile.Row) error {
				chunks = append(chunks, slices.Clone(rows))
				return nil
			})
			if !errors.Is(err, boom) || err.Error() != nextErr.Error() {
				t.Fatalf("%s size %d workers %d: Chunks = %v, want %v", tc.format, sw.size, sw.workers, err, nextErr)
			}
			checkChunks(t, chunks, sw.size, want)
			if _, err := rd.Next(); err == nil || err.Error() != nextErr.Error() {
				t.Fatalf("%s size %d workers %d: Next after Chunks = %v, want the read error again", tc.format, sw.size, sw.workers, err)
			}
		}
	}
}

// TestChunksFnErrorBeforeReadError checks that fn's error wins when fn
// stops the reading before the read error is reached.
func TestChunksFnErrorBeforeReadError(t *testing.T) {
	boom, stop := errors.New("disk on fire"), errors.New("stop")
	data := jobLine(1) + "\n" + jobLine(2) + "\n" + jobLine(3) + "\n" + jobLine(4)[:10]
	for _, workers := range []int{1, 4} {
		rd, err := jobfile.NewReader(&failingReader{[]byte(data), boom}, jobfile.JSONL)
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		err = rd.Chunks(1, workers, func([]jobfile.Row) error { calls++; return stop })
		if err != stop || calls != 1 {
			t.Errorf("workers %d: Chunks = %v after %d calls, want fn's error after 1", workers, err, calls)
		}
	}
}

// resumingReader returns first, then err once, then rest, then io.EOF: a
// source that has more to give after an error or an end (a file still being
// written, a terminal after ^D).
type resumingReader struct {
	first, rest string
	err         error
	errSent     bool
}

func (r *resumingReader) Read(p []byte) (int, error) {
	switch {
	case r.first != "":
		n := copy(p, r.first)
		r.first = r.first[n:]
		return n, nil
	case !r.errSent:
		r.errSent = true
		return 0, r.err
	case r.rest != "":
		n := copy(p, r.rest)
		r.rest = r.rest[n:]
		return n, nil
	}
	return 0, io.EOF
}

// TestChunksAfterNextEnded checks that Chunks, like Next, reads nothing
// more once Next has returned io.EOF or a fatal error: both are returned
// again by every later call.
func TestChunksAfterNextEnded(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, end := range []error{io.EOF, boom} {
		for _, workers := range []int{1, 4} {
			t.Run(fmt.Sprintf("%v/workers=%d", end, workers), func(t *testing.T) {
				chunksAfterNextEnded(t, end, workers)
			})
		}
	}
}

func chunksAfterNextEnded(t *testing.T, end error, workers int) {
	src := &resumingReader{first: jobLine(1) + "\n", rest: jobLine(2) + "\n" + jobLine(3) + "\n", err: end}
	rd, err := jobfile.NewReader(src, jobfile.JSONL)
	if err != nil {
		t.Fatal(err)
	}
	if row, err := rd.Next(); err != nil || row.Line != 1 {
		t.Fatalf("first row: %+v, %v", row, err)
	}
	_, nextErr := rd.Next()
	if !errors.Is(nextErr, end) {
		t.Fatalf("second Next = %v, want %v", nextErr, end)
	}
	var got []jobfile.Row
	err = rd.Chunks(2, workers, func(rows []jobfile.Row) error {
		got = append(got, rows...)
		return nil
	})
	want := nextErr
	if end == io.EOF {
		want = nil
	}
	if len(got) != 0 || (err == nil) != (want == nil) || (err != nil && err.Error() != want.Error()) {
		t.Errorf("after Next returned %v, Chunks with %d workers = %v and gave fn %d rows (lines %v); want %v and none",
			nextErr, workers, err, len(got), lines(got), want)
	}
}

func lines(rows []jobfile.Row) []int {
	out := make([]int, len(rows))
	for i, r := range rows {
		out[i] = r.Line
	}
	return out
}

// TestChunksFnErrorStopsReading checks that an error from fn stops the
// reading of the file too, not only the calls of fn: of a large file, only
// what was read ahead (a few chunks and the read buffer) is consumed.
func TestChunksFnErrorStopsReading(t *testing.T) {
	const n, limit = 40000, 1 << 20
	stop := errors.New("stop")
	for _, f := range []jobfile.Format{jobfile.JSONL, jobfile.CSV} {
		row := func(i int) string {
			switch {
			case f == jobfile.JSONL:
				return jobLine(i) + "\n"
			case i == 0:
				return csvHeader + "\n"
			}
			return csvRow(i) + "\n"
		}
		size := 0
		for i := range n {
			size += len(row(i))
		}
		if size < 2*limit {
			t.Fatalf("%s file of %d bytes is too small for the test", f, size)
		}
		for _, sw := range chunkSizes {
			if sw.size > 64 {
				continue
			}
			gen := &genReader{n: n, row: row}
			rd, err := jobfile.NewReader(gen, f)
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			err = rd.Chunks(sw.size, sw.workers, func([]jobfile.Row) error { calls++; return stop })
			if err != stop || calls != 1 {
				t.Fatalf("%s size %d workers %d: Chunks = %v after %d calls", f, sw.size, sw.workers, err, calls)
			}
			// What is read ahead (a few chunks of at most 64 rows and the
			// read buffer) is far less than limit.
			if gen.total > limit {
				t.Errorf("%s size %d workers %d: %d bytes of %d read after fn failed on the first chunk, want at most %d",
					f, sw.size, sw.workers, gen.total, size, limit)
			}
		}
	}
}

// TestChunksCutAtBytes: with decoders, a chunk of large JSONL rows is cut
// short once it holds about 1 MiB, so memory does not grow with the rows'
// size; the rows still all come, in order.
func TestChunksCutAtBytes(t *testing.T) {
	const rowBytes = 60 << 10
	var b strings.Builder
	for n := range 50 {
		b.WriteString(padded(t, n, rowBytes) + "\n")
	}
	want := readAll(t, strings.NewReader(b.String()), jobfile.JSONL)
	chunks, err := readChunks(t, strings.NewReader(b.String()), jobfile.JSONL, 64, 4)
	if err != nil {
		t.Fatal(err)
	}
	var all []jobfile.Row
	for i, c := range chunks {
		if n := len(c) * rowBytes; n > 1<<20+rowBytes {
			t.Errorf("chunk %d holds %d rows, about %d bytes", i, len(c), n)
		}
		all = append(all, c...)
	}
	if len(chunks) < 3 || !reflect.DeepEqual(all, want) {
		t.Fatalf("%d chunks holding %d rows; want at least 3 chunks holding the %d rows Next reads", len(chunks), len(all), len(want))
	}
}
