// Package jobfile reads files of launch jobs, as JSON Lines or as CSV, and
// writes jobs as JSON Lines. It is what "rcslaunch enqueue --file" and the
// HTTP API read, and what "rcslaunch dlq export" and "rcslaunch batch report
// --failed" write.
//
// A file is read one row at a time, so memory does not grow with its size.
// A row that is not a valid job is reported with the line it starts on and
// every problem it has, each naming its field the same way for both formats
// ("launch.agent_no", "regions[0].region_id"), and reading goes on with the
// next row. Only a read error, a CSV header that cannot be understood, or a
// CSV row longer than 1 MiB (most likely a missing closing quote, which
// makes the rest of the file one cell) stops a file.
//
// # JSON Lines (--format jsonl)
//
// One job per line, in the JSON form of a launch job: the Kaleyra request
// body plus an optional "id", "sid" and "priority". Blank lines are
// skipped, lines may end in \n or \r\n, and a UTF-8 byte order mark at the
// start of the file is ignored. A line longer than 64 KiB is an error for
// that line only.
//
// # CSV (--format csv)
//
// A CSV file as in RFC 4180: cells are separated by commas, and a cell that
// holds a comma, a double quote or a line break is put in double quotes,
// with each double quote inside it doubled. A UTF-8 byte order mark at the
// start (as spreadsheet programs write) is ignored, and lines may end in \n
// or \r\n.
//
// The first row is the header and names the columns. The columns may come
// in any order and each may appear at most once; names are case-sensitive,
// and spaces around them are ignored:
//
//	column                     job field                            required
//	id                         id (idempotency key)                 no
//	sid                        sid (the job's Kaleyra account)      no
//	priority                   priority (high, default or low)      no
//	agent_no                   launch.agent_no                      yes
//	launch_type                launch.launch_type (default 1)       no
//	optin_description          launch.optin_description             yes
//	trigger_description        launch.trigger_description           yes
//	interactions_description   launch.interactions_description      yes
//	optout_description         launch.optout_description            yes
//	agent_access_instructions  launch.agent_access_instructions     yes
//	provider_launch_id         launch.provider_launch_id            no
//	launch_name                launch.launch_name                   no
//	video_uris                 launch.video_uris                    no
//	screenshot_uris            launch.screenshot_uris               no
//	regions                    regions                              no
//
// A header with an unknown or repeated column rejects the whole file,
// naming the column (and the nearest known name, for a typo). A column may
// be left out: its field is then absent from every row, and validation
// reports it where it is required.
//
// Each further row is one job, with one cell per column of the header. A
// row with a different number of cells is an error for that row, and a row
// whose cells are all empty or white space is skipped. An empty cell means
// the field is absent; other cells are taken as they are, spaces included.
//
//   - video_uris and screenshot_uris hold one or more URLs separated by "|",
//     such as "https://example.com/a.mp4 | https://example.com/b.mp4"; spaces
//     around each URL are ignored. A "|" inside a URL must be written %7C.
//   - regions holds one or more regions separated by "|", each either REGION
//     or REGION_ID:REGION, split at the first ":". To give a region that
//     contains ":" without an ID, start the entry with ":" (":a:b" is region
//     "a:b" without ID). Spaces around each entry are ignored. Example:
//     "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8:IN-north | IN-south".
//
// A file with two jobs:
//
//	agent_no,optin_description,trigger_description,interactions_description,optout_description,agent_access_instructions,video_uris,regions
//	48900,Customers reply START,START,Order updates,Reply STOP,Test number +91 90000 00000,https://example.com/demo.mp4,IN
//	48901,"Opt in on our site, then reply START",START,"Order updates
//	and delivery alerts",Reply STOP,See the attached test plan,,8346a250-d7a9-47dc-8202-a8b1c2d3e4e8:IN-north|IN-south
//
// The second job's interactions_description spans two lines; its row is
// reported as line 3, where it starts.
package jobfile

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rcslaunch/rcslaunch/internal/suggest"
	"github.com/rcslaunch/rcslaunch/launch"
)

// Format is the layout of a file of jobs.
type Format string

// The formats Reader understands.
const (
	JSONL Format = "jsonl"
	CSV   Format = "csv"
)

// ParseFormat returns the format named by s, the value of a --format flag,
// ignoring case.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case JSONL, CSV:
		return f, nil
	}
	return "", fmt.Errorf("invalid --format %q: must be %s or %s", s, JSONL, CSV)
}

// Row is one job read from a file.
type Row struct {
	// Line is the 1-based line of the file where the row starts.
	Line int
	// Job is the job, with defaults applied. When Err is not nil it holds
	// what could be read of the row.
	Job launch.Job
	// Err is nil for a valid job, or a *launch.ValidationError saying what
	// is wrong with this row.
	Err error
}

// HeaderError is a problem with the header row of a CSV file. It makes the
// whole file unreadable, since no row can be understood without it.
type HeaderError struct {
	// Line is the line of the header row.
	Line int
	// Column is the name of the bad column, without the spaces around it,
	// or "" when the problem is not with one named column.
	Column string
	// Reason says what is wrong, naming the column and its position.
	Reason string
}

func (e *HeaderError) Error() string {
	return fmt.Sprintf("CSV header (line %d): %s", e.Line, e.Reason)
}

// maxCSVRow bounds the bytes of one CSV row, far above any valid job (whose
// JSON, longer than its CSV, is at most launch.MaxJobBytes) but small enough
// that a file with an unbalanced quote, which CSV reads as one endless cell,
// cannot exhaust memory.
const maxCSVRow = 1 << 20

// Reader reads the jobs of a file one row at a time.
type Reader struct {
	format Format
	err    error // the first fatal error or io.EOF, returned by every later Next

	// JSONL
	br   *bufio.Reader
	line int // lines read so far

	// CSV
	src      *rowLimiter
	cr       *csv.Reader
	cols     []column // the column of each cell, by position
	lastLine int      // the line where the last row read starts
	rowStart int64    // the byte offset where the current row starts
}

// NewReader returns a Reader of the jobs in r. For CSV it reads and checks
// the header row at once; an error then (a *HeaderError, or a read error)
// means that no row of the file can be read.
func NewReader(r io.Reader, f Format) (*Reader, error) {
	f, err := ParseFormat(string(f))
	if err != nil {
		return nil, err
	}
	if f == CSV {
		return newCSVReader(r)
	}
	// Room for a line of launch.MaxJobBytes and its \r\n, so that every
	// line that can hold a valid job is read in one piece.
	return &Reader{format: f, br: bufio.NewReaderSize(r, launch.MaxJobBytes+2)}, nil
}

// Next returns the next row. It returns io.EOF after the last row; any
// other error is fatal (the file cannot be read further) and is returned
// again by every later call. A row that is not a valid job is not an error
// of Next: it is a Row with Err set.
func (r *Reader) Next() (Row, error) {
	if r.err != nil {
		return Row{}, r.err
	}
	var row Row
	var err error
	if r.format == JSONL {
		row, err = r.nextJSONL()
	} else {
		row, err = r.nextCSV()
	}
	if err != nil {
		r.err = err
		return Row{}, err
	}
	return row, nil
}

// Write writes j, with its defaults applied, as one JSONL line that Reader
// reads back: its ID, SID and priority (those it has) and its request body,
// with sorted keys and without HTML escaping. A job without an ID gets a derived one
// when it is enqueued again, the same as before as long as the account is
// the same; callers that want the ID spelled out set it first, such as to
// launch.IDFor(sid, j).
func Write(w io.Writer, j launch.Job) error {
	j.ApplyDefaults()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	// Encode writes the whole line, with its newline, in one call to w.
	return enc.Encode(j)
}

// rowError is a Row.Err with a single problem.
func rowError(field, format string, args ...any) error {
	return &launch.ValidationError{Errors: []launch.FieldError{{Field: field, Reason: fmt.Sprintf(format, args...)}}}
}

var bom = []byte("\ufeff")

func (r *Reader) nextJSONL() (Row, error) {
	line, data, rowErr, err := r.nextRawJSONL()
	if err != nil || rowErr != nil {
		return Row{Line: line, Err: rowErr}, err
	}
	return decodeJSONL(line, data), nil
}

// nextRawJSONL reads the next non-blank line without decoding it: its line
// number and bytes (valid until the next read), or the row's error when the
// line is too long to hold a job.
func (r *Reader) nextRawJSONL() (line int, data []byte, rowErr, err error) {
	for {
		data, n, err := r.readLine()
		if err != nil {
			if err == io.EOF {
				return 0, nil, nil, io.EOF
			}
			return 0, nil, nil, fmt.Errorf("reading line %d: %w", r.line+1, err)
		}
		r.line++
		if n > launch.MaxJobBytes {
			return r.line, nil, rowError("", "line is %d bytes, more than the %d allowed", n, launch.MaxJobBytes), nil
		}
		if len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		return r.line, data, nil, nil
	}
}

func decodeJSONL(line int, data []byte) Row {
	j, err := launch.Parse(data)
	return Row{Line: line, Job: j, Err: err}
}

// readLine returns the next line without its line ending (\n or \r\n) and
// its length n. A line too long for the buffer is read and dropped piece by
// piece, and only its length is returned, so that memory stays bounded. A
// byte order mark at the start of the first line is dropped. The line is
// only valid until the next call.
func (r *Reader) readLine() (line []byte, n int, err error) {
	line, err = r.br.ReadSlice('\n')
	switch {
	case err == nil, err == io.EOF && len(line) > 0:
		line = trimEOL(line)
		if r.line == 0 {
			line = bytes.TrimPrefix(line, bom)
		}
		return line, len(line), nil
	case err != bufio.ErrBufferFull:
		return nil, 0, err
	}
	// A line longer than the buffer: count it, without the line ending.
	n = len(line)
	last := line[len(line)-1]
	for {
		line, err = r.br.ReadSlice('\n')
		n += len(line)
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				n--
				if len(line) > 1 && line[len(line)-2] == '\r' || len(line) == 1 && last == '\r' {
					n--
				}
			}
			last = line[len(line)-1]
		}
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil, io.EOF:
			return nil, n, nil
		default:
			return nil, 0, err
		}
	}
}

// trimEOL removes a trailing \n or \r\n.
func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

// column sets one field of a job from a non-empty cell.
type column func(j *launch.Job, cell string)

// columnNames lists the CSV columns in the order of the documentation.
var columnNames = []string{
	"id", "sid", "priority", "agent_no", "launch_type", "optin_description", "trigger_description",
	"interactions_description", "optout_description", "agent_access_instructions",
	"provider_launch_id", "launch_name", "video_uris", "screenshot_uris", "regions",
}

var columns = map[string]column{
	"id":                        func(j *launch.Job, c string) { j.ID = c },
	"sid":                       func(j *launch.Job, c string) { j.SID = c },
	"priority":                  func(j *launch.Job, c string) { j.Priority = launch.Priority(c) },
	"agent_no":                  func(j *launch.Job, c string) { j.Launch.AgentNo = c },
	"launch_type":               func(j *launch.Job, c string) { j.Launch.LaunchType = c },
	"optin_description":         func(j *launch.Job, c string) { j.Launch.OptinDescription = c },
	"trigger_description":       func(j *launch.Job, c string) { j.Launch.TriggerDescription = c },
	"interactions_description":  func(j *launch.Job, c string) { j.Launch.InteractionsDescription = c },
	"optout_description":        func(j *launch.Job, c string) { j.Launch.OptoutDescription = c },
	"agent_access_instructions": func(j *launch.Job, c string) { j.Launch.AgentAccessInstructions = c },
	"provider_launch_id":        func(j *launch.Job, c string) { j.Launch.ProviderLaunchID = c },
	"launch_name":               func(j *launch.Job, c string) { j.Launch.LaunchName = c },
	"video_uris":                func(j *launch.Job, c string) { j.Launch.VideoURIs = splitList(c) },
	"screenshot_uris":           func(j *launch.Job, c string) { j.Launch.ScreenshotURIs = splitList(c) },
	"regions":                   func(j *launch.Job, c string) { j.Regions = splitRegions(c) },
}

// splitList splits a cell at "|" and trims the spaces around each entry.
// Empty entries are kept, so that validation reports them by position.
func splitList(cell string) []string {
	entries := strings.Split(cell, "|")
	for i, e := range entries {
		entries[i] = strings.TrimSpace(e)
	}
	return entries
}

// splitRegions reads a regions cell: entries as in splitList, each REGION
// or REGION_ID:REGION, split at the first ":".
func splitRegions(cell string) []launch.Region {
	entries := splitList(cell)
	regions := make([]launch.Region, len(entries))
	for i, e := range entries {
		if id, region, ok := strings.Cut(e, ":"); ok {
			regions[i] = launch.Region{Region: region, RegionID: id}
		} else {
			regions[i] = launch.Region{Region: e}
		}
	}
	return regions
}

func newCSVReader(r io.Reader) (*Reader, error) {
	src := &rowLimiter{r: r, limit: maxCSVRow}
	br := bufio.NewReader(src)
	if b, err := br.Peek(len(bom)); bytes.Equal(b, bom) {
		_, _ = br.Discard(len(bom))
	} else if err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading the CSV header: %w", err)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	rd := &Reader{format: CSV, src: src, cr: cr}

	header, err := cr.Read()
	var pe *csv.ParseError
	switch {
	case err == io.EOF:
		return nil, &HeaderError{Line: 1, Reason: "the file is empty; a CSV file starts with a header row naming its columns"}
	case errors.As(err, &pe):
		return nil, &HeaderError{Line: pe.StartLine, Reason: "invalid CSV: " + csvProblem(pe)}
	case err == errRowTooLong:
		return nil, &HeaderError{Line: 1, Reason: fmt.Sprintf("the header row is longer than %d bytes; is a closing quote missing?", maxCSVRow)}
	case err != nil:
		return nil, fmt.Errorf("reading the CSV header: %w", err)
	}
	line, _ := cr.FieldPos(0)
	rd.lastLine = line
	seen := make(map[string]int, len(header))
	rd.cols = make([]column, len(header))
	for i, cell := range header {
		name := strings.TrimSpace(cell)
		switch {
		case name == "":
			return nil, &HeaderError{Line: line, Reason: fmt.Sprintf("column %d has no name", i+1)}
		case columns[name] == nil:
			reason := fmt.Sprintf("unknown column %q (column %d)", name, i+1)
			if s := suggest.Nearest(name, columnNames); s != "" {
				reason += fmt.Sprintf("; did you mean %q?", s)
			} else {
				reason += "; the columns are " + strings.Join(columnNames, ", ")
			}
			return nil, &HeaderError{Line: line, Column: name, Reason: reason}
		case seen[name] > 0:
			return nil, &HeaderError{Line: line, Column: name,
				Reason: fmt.Sprintf("column %q appears more than once (columns %d and %d)", name, seen[name], i+1)}
		}
		seen[name] = i + 1
		rd.cols[i] = columns[name]
	}
	return rd, nil
}

func (r *Reader) nextCSV() (Row, error) {
	for {
		r.src.startRow()
		r.rowStart = r.cr.InputOffset()
		cells, err := r.cr.Read()
		var pe *csv.ParseError
		switch {
		case err == io.EOF:
			return Row{}, io.EOF
		case errors.As(err, &pe):
			r.lastLine = pe.StartLine
			return Row{Line: pe.StartLine, Err: rowError("", "invalid CSV: %s", csvProblem(pe))}, nil
		case err != nil:
			return Row{}, r.readError(err)
		}
		line, _ := r.cr.FieldPos(0)
		r.lastLine = line
		if blank(cells) {
			continue
		}
		if len(cells) != len(r.cols) {
			return Row{Line: line, Err: rowError("", "row has %d cells, the header has %d columns", len(cells), len(r.cols))}, nil
		}
		var j launch.Job
		for i, cell := range cells {
			if cell != "" {
				r.cols[i](&j, cell)
			}
		}
		j.ApplyDefaults()
		return Row{Line: line, Job: j, Err: j.Validate()}, nil
	}
}

// readError describes a fatal error while reading CSV.
func (r *Reader) readError(err error) error {
	if err == errRowTooLong {
		return fmt.Errorf("CSV: the row after line %d (at byte %d) is longer than %d bytes; is a closing quote missing?",
			r.lastLine, r.rowStart, maxCSVRow)
	}
	return fmt.Errorf("reading CSV after line %d: %w", r.lastLine, err)
}

// csvProblem describes a CSV syntax error without the line the row starts
// on, which the caller reports separately.
func csvProblem(pe *csv.ParseError) string {
	return fmt.Sprintf("%v (line %d, column %d)", pe.Err, pe.Line, pe.Column)
}

func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

var errRowTooLong = errors.New("CSV row too long")

// rowLimiter fails a read once the current CSV row has taken more than
// limit bytes from r (plus what bufio reads ahead), bounding the memory
// encoding/csv uses for one row.
type rowLimiter struct {
	r        io.Reader
	limit    int64
	n, start int64 // bytes read in all; n when the current row started
}

func (l *rowLimiter) startRow() { l.start = l.n }

func (l *rowLimiter) Read(p []byte) (int, error) {
	if l.n-l.start > l.limit {
		return 0, errRowTooLong
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}
