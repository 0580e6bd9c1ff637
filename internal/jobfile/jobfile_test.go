package jobfile_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/jobfile"
	"github.com/rcslaunch/rcslaunch/launch"
)

// jobLine is a valid job as one JSONL line, for agent n.
func jobLine(n int) string {
	return fmt.Sprintf(`{"launch":{"optin_description":"Reply START","trigger_description":"START",`+
		`"interactions_description":"Order updates","optout_description":"Reply STOP",`+
		`"agent_access_instructions":"Test number","agent_no":"%d"}}`, n)
}

// csvHeader and csvRow are a CSV header and a valid row for agent n.
const csvHeader = "agent_no,optin_description,trigger_description,interactions_description,optout_description,agent_access_instructions"

func csvRow(n int) string {
	return fmt.Sprintf("%d,Reply START,START,Order updates,Reply STOP,Test number", n)
}

// readAll reads every row, failing the test on a fatal error.
func readAll(t testing.TB, r io.Reader, f jobfile.Format) []jobfile.Row {
	t.Helper()
	rd, err := jobfile.NewReader(r, f)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var rows []jobfile.Row
	for {
		row, err := rd.Next()
		if err == io.EOF {
			return rows
		}
		if err != nil {
			t.Fatalf("Next after %d rows: %v", len(rows), err)
		}
		rows = append(rows, row)
	}
}

// problems returns the field errors of a row error, failing the test unless
// it is a *launch.ValidationError with at least one.
func problems(t testing.TB, err error) []launch.FieldError {
	t.Helper()
	var ve *launch.ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) == 0 {
		t.Fatalf("row error %v (%T), want a *launch.ValidationError with field errors", err, err)
	}
	return ve.Errors
}

// want describes an expected row: its line, and either the agent_no of a
// valid job or the field and a part of the reason of its first problem.
type want struct {
	line          int
	agent         string
	field, reason string
}

func check(t *testing.T, rows []jobfile.Row, wants []want) {
	t.Helper()
	if len(rows) != len(wants) {
		for _, r := range rows {
			t.Logf("line %d: %+v %v", r.Line, r.Job.Launch, r.Err)
		}
		t.Fatalf("got %d rows, want %d", len(rows), len(wants))
	}
	for i, w := range wants {
		r := rows[i]
		if r.Line != w.line {
			t.Errorf("row %d: line %d, want %d", i, r.Line, w.line)
		}
		if w.reason == "" {
			if r.Err != nil {
				t.Errorf("row %d (line %d): %v", i, r.Line, r.Err)
			} else if r.Job.Launch.AgentNo != w.agent {
				t.Errorf("row %d (line %d): agent_no %q, want %q", i, r.Line, r.Job.Launch.AgentNo, w.agent)
			}
			continue
		}
		if r.Err == nil {
			t.Errorf("row %d (line %d): no error, want %s: %s", i, r.Line, w.field, w.reason)
			continue
		}
		fe := problems(t, r.Err)[0]
		if fe.Field != w.field || !strings.Contains(fe.Reason, w.reason) {
			t.Errorf("row %d (line %d): %v, want first %s: …%s…", i, r.Line, r.Err, w.field, w.reason)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]jobfile.Format{"jsonl": jobfile.JSONL, "csv": jobfile.CSV, "CSV": jobfile.CSV, " JsonL ": jobfile.JSONL} {
		if got, err := jobfile.ParseFormat(in); got != want || err != nil {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "json", "xml", "tsv"} {
		_, err := jobfile.ParseFormat(in)
		if err == nil || !strings.Contains(err.Error(), "--format") || !strings.Contains(err.Error(), "jsonl or csv") {
			t.Errorf("ParseFormat(%q) error = %v, want one naming --format and jsonl or csv", in, err)
		}
	}
	if _, err := jobfile.NewReader(strings.NewReader(""), "xml"); err == nil || !strings.Contains(err.Error(), "jsonl or csv") {
		t.Errorf("NewReader with format xml: %v", err)
	}
}

func TestJSONL(t *testing.T) {
	input := strings.Join([]string{
		jobLine(1),
		"",
		"   \t ",
		jobLine(2),
		`{"launch":{"agent_no":"3"}}`,
		`{"launch":{}`,
		`not json`,
		jobLine(8),
		`{"launch":{"optin_desription":"x"}}`,
		jobLine(10), // the last line has no line ending
	}, "\n")
	check(t, readAll(t, strings.NewReader(input), jobfile.JSONL), []want{
		{line: 1, agent: "1"},
		{line: 4, agent: "2"},
		{line: 5, field: "launch.optin_description", reason: "is required"},
		{line: 6, field: "", reason: "invalid JSON: unexpected end of input"},
		{line: 7, field: "", reason: "invalid JSON: invalid character 'o'"},
		{line: 8, agent: "8"},
		{line: 9, field: "launch.optin_desription", reason: `did you mean "optin_description"?`},
		{line: 10, agent: "10"},
	})
}

func TestJSONLDefaultsAndID(t *testing.T) {
	rows := readAll(t, strings.NewReader(`{"id":"job-1",`+jobLine(1)[1:]+"\n"), jobfile.JSONL)
	if len(rows) != 1 || rows[0].Err != nil {
		t.Fatalf("rows = %+v", rows)
	}
	if j := rows[0].Job; j.ID != "job-1" || j.Launch.LaunchType != launch.DefaultLaunchType {
		t.Errorf("job = %+v, want ID job-1 and launch_type %q", j, launch.DefaultLaunchType)
	}
}

func TestJSONLLineEndingsAndBOM(t *testing.T) {
	input := "\ufeff" + jobLine(1) + "\r\n\r\n" + jobLine(2) + "\r\n" + jobLine(3) + "\r"
	check(t, readAll(t, strings.NewReader(input), jobfile.JSONL), []want{
		{line: 1, agent: "1"},
		{line: 3, agent: "2"},
		{line: 4, agent: "3"},
	})
	// A byte order mark is only skipped at the start of the file.
	input = jobLine(1) + "\n\ufeff" + jobLine(2) + "\n"
	check(t, readAll(t, strings.NewReader(input), jobfile.JSONL), []want{
		{line: 1, agent: "1"},
		{line: 2, field: "", reason: "invalid JSON"},
	})
	// A file holding only a byte order mark has no rows.
	check(t, readAll(t, strings.NewReader("\ufeff"), jobfile.JSONL), nil)
	check(t, readAll(t, strings.NewReader(""), jobfile.JSONL), nil)
}

// padded returns jobLine(n) padded with spaces to exactly size bytes.
func padded(t *testing.T, n, size int) string {
	t.Helper()
	l := jobLine(n)
	if len(l) > size {
		t.Fatalf("job line is already %d bytes", len(l))
	}
	return l + strings.Repeat(" ", size-len(l))
}

func TestJSONLLongLines(t *testing.T) {
	const max = launch.MaxJobBytes
	tooLong := func(n int) string { return fmt.Sprintf("line is %d bytes, more than the %d allowed", n, max) }
	input := strings.Join([]string{
		padded(t, 1, max) + "\r",          // exactly the limit, with \r\n: fine
		padded(t, 2, max+1),               // one byte too long, fits in the buffer
		padded(t, 3, max+1) + "\r",        // the same with \r\n
		padded(t, 4, max+2),               // does not fit in the buffer
		padded(t, 5, max+1+max+1) + "\r",  // \r\n split over two buffers
		padded(t, 6, 5*max+7),             // several buffers
		jobLine(7),                        // reading goes on
		padded(t, 8, max),                 // exactly the limit, \n
		strings.Repeat(" ", 3*max) + "\r", // long but blank: still an error
		padded(t, 10, 2*max+3),            // the last line, without line ending
	}, "\n")
	check(t, readAll(t, strings.NewReader(input), jobfile.JSONL), []want{
		{line: 1, agent: "1"},
		{line: 2, reason: tooLong(max + 1)},
		{line: 3, reason: tooLong(max + 1)},
		{line: 4, reason: tooLong(max + 2)},
		{line: 5, reason: tooLong(2*max + 2)},
		{line: 6, reason: tooLong(5*max + 7)},
		{line: 7, agent: "7"},
		{line: 8, agent: "8"},
		{line: 9, reason: tooLong(3 * max)},
		{line: 10, reason: tooLong(2*max + 3)},
	})
	// A \r\n at and around the end of the buffer (the limit plus 2).
	for extra := range 4 {
		first := want{line: 1, agent: "1"}
		if extra > 0 {
			first = want{line: 1, reason: tooLong(max + extra)}
		}
		input := padded(t, 1, max+extra) + "\r\n" + jobLine(2)
		check(t, readAll(t, strings.NewReader(input), jobfile.JSONL), []want{first, {line: 2, agent: "2"}})
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadErrorIsFatal(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, tc := range []struct {
		format jobfile.Format
		data   string
	}{
		{jobfile.JSONL, jobLine(1) + "\n" + jobLine(2)[:20]},
		{jobfile.CSV, csvHeader + "\n" + csvRow(1) + "\n" + csvRow(2)[:5]},
		{jobfile.CSV, csvHeader + "\n" + csvRow(1) + "\n\"2,unterminated"},
	} {
		rd, err := jobfile.NewReader(&failingReader{[]byte(tc.data), boom}, tc.format)
		if err != nil {
			t.Fatal(err)
		}
		row, err := rd.Next()
		if err != nil || row.Err != nil || row.Line != 2-bool2int(tc.format == jobfile.JSONL) {
			t.Fatalf("%s: first row = %+v, %v", tc.format, row, err)
		}
		for range 2 {
			if _, err := rd.Next(); !errors.Is(err, boom) {
				t.Fatalf("%s: Next = %v, want the read error, every time", tc.format, err)
			}
		}
	}
	if _, err := jobfile.NewReader(&failingReader{[]byte("agent_no,"), boom}, jobfile.CSV); !errors.Is(err, boom) {
		t.Errorf("NewReader with a failing header read = %v", err)
	}
	if _, err := jobfile.NewReader(&failingReader{nil, boom}, jobfile.CSV); !errors.Is(err, boom) {
		t.Errorf("NewReader failing at once = %v", err)
	}
}

func bool2int(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestEOFIsSticky(t *testing.T) {
	for _, f := range []jobfile.Format{jobfile.JSONL, jobfile.CSV} {
		data := jobLine(1)
		if f == jobfile.CSV {
			data = csvHeader + "\n" + csvRow(1)
		}
		rd, err := jobfile.NewReader(strings.NewReader(data), f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rd.Next(); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := rd.Next(); err != io.EOF {
				t.Fatalf("%s: Next after the end = %v, want io.EOF", f, err)
			}
		}
	}
}

func TestCSV(t *testing.T) {
	input := strings.Join([]string{
		csvHeader,
		csvRow(1),
		"",
		csvRow(3),
		`4,"Opt in, then ""START""",START,"Order updates`,
		`and delivery alerts",Reply STOP,"Multi`,
		``,
		`line"`,
		`,,,,,`,
		` , ,,	,,`,
		`10,a,b,c,d`,
		`11,a,b,c,d,e,f`,
		`12,"unterminated,b,c,d,e,f`,
		`13,bare "quote,b,c,d,e`,
		`14,a,,c,d,e`,
		csvRow(15),
	}, "\n") + "\n"
	rows := readAll(t, strings.NewReader(input), jobfile.CSV)
	check(t, rows, []want{
		{line: 2, agent: "1"},
		{line: 4, agent: "3"},
		{line: 5, agent: "4"},
		{line: 11, reason: "row has 5 cells, the header has 6 columns"},
		{line: 12, reason: "row has 7 cells, the header has 6 columns"},
		// The quoted cell opened on line 13 takes in line 14 up to its
		// quote, where CSV finds the error; reading resumes on line 15.
		{line: 13, reason: `invalid CSV: extraneous or missing " in quoted-field (line 14, column 9)`},
		{line: 15, field: "launch.trigger_description", reason: "is required"},
		{line: 16, agent: "15"},
	})
	l := rows[2].Job.Launch
	if l.OptinDescription != `Opt in, then "START"` || l.InteractionsDescription != "Order updates\nand delivery alerts" ||
		l.AgentAccessInstructions != "Multi\n\nline" {
		t.Errorf("quoted cells read as %q, %q, %q", l.OptinDescription, l.InteractionsDescription, l.AgentAccessInstructions)
	}

	// Without the unterminated quote, reading goes on after each bad row.
	input = strings.Join([]string{
		csvHeader,
		`13,bare "quote,b,c,d,e`,
		`14,a,,c,d,e`,
		`15,"x"y,b,c,d,e`,
		csvRow(16),
	}, "\n")
	check(t, readAll(t, strings.NewReader(input), jobfile.CSV), []want{
		{line: 2, reason: `invalid CSV: bare " in non-quoted-field (line 2, column 9)`},
		{line: 3, field: "launch.trigger_description", reason: "is required and must be a non-empty string"},
		{line: 4, reason: `invalid CSV: extraneous or missing " in quoted-field (line 4, column 6)`},
		{line: 5, agent: "16"},
	})
}

func TestCSVLineEndingsAndBOM(t *testing.T) {
	input := "\ufeff" + csvHeader + "\r\n" + csvRow(1) + "\r\n\r\n" +
		`2,"two` + "\r\n" + `lines",START,i,o,a` + "\r\n" + csvRow(4)
	rows := readAll(t, strings.NewReader(input), jobfile.CSV)
	check(t, rows, []want{{line: 2, agent: "1"}, {line: 4, agent: "2"}, {line: 6, agent: "4"}})
	if got := rows[1].Job.Launch.OptinDescription; got != "two\nlines" {
		t.Errorf("a quoted line break reads as %q, want a plain \\n", got)
	}
	// A BOM before a quoted header cell.
	rows = readAll(t, strings.NewReader("\ufeff\"agent_no\",optin_description\n1,x\n"), jobfile.CSV)
	check(t, rows, []want{{line: 2, field: "launch.trigger_description", reason: "is required"}})
}

func TestCSVColumns(t *testing.T) {
	input := " regions ,screenshot_uris,video_uris,launch_name,provider_launch_id,agent_access_instructions," +
		"optout_description,interactions_description,trigger_description,optin_description,launch_type,agent_no,id\n" +
		`8346a250-d7a9-47dc-8202-a8b1c2d3e4e8:IN-north | IN-south|:a:b,https://example.com/s1,` +
		`" https://example.com/v1 |https://example.com/v2 ",name,pid,access,out,inter,trig,in,2,48900,job-1` + "\n" +
		`IN,,,,,access,out,inter,trig,in,,48901,` + "\n"
	rows := readAll(t, strings.NewReader(input), jobfile.CSV)
	if len(rows) != 2 || rows[0].Err != nil || rows[1].Err != nil {
		t.Fatalf("rows = %+v", rows)
	}
	want := launch.Job{
		ID: "job-1",
		Launch: launch.Launch{
			AgentAccessInstructions: "access",
			AgentNo:                 "48900",
			InteractionsDescription: "inter",
			LaunchName:              "name",
			LaunchType:              "2",
			OptinDescription:        "in",
			OptoutDescription:       "out",
			ProviderLaunchID:        "pid",
			ScreenshotURIs:          []string{"https://example.com/s1"},
			TriggerDescription:      "trig",
			VideoURIs:               []string{"https://example.com/v1", "https://example.com/v2"},
		},
		Regions: []launch.Region{
			{RegionID: "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8", Region: "IN-north"},
			{Region: "IN-south"},
			{Region: "a:b"},
		},
	}
	if !reflect.DeepEqual(rows[0].Job, want) {
		t.Errorf("row 1 = %+v\nwant    %+v", rows[0].Job, want)
	}
	// Empty cells are absent fields, and launch_type gets its default.
	want = launch.Job{
		Launch: launch.Launch{
			AgentAccessInstructions: "access", AgentNo: "48901", InteractionsDescription: "inter",
			LaunchType: "1", OptinDescription: "in", OptoutDescription: "out", TriggerDescription: "trig",
		},
		Regions: []launch.Region{{Region: "IN"}},
	}
	if !reflect.DeepEqual(rows[1].Job, want) {
		t.Errorf("row 2 = %+v\nwant    %+v", rows[1].Job, want)
	}
}

// TestCSVPriority: the priority column sets a row's priority (empty: not
// set); a bad value is an error of the field priority on the row's line.
func TestCSVPriority(t *testing.T) {
	input := "priority," + csvHeader + "\n" + "high," + csvRow(1) + "\n" + "," + csvRow(2) + "\n" +
		"low," + csvRow(3) + "\n" + "urgent," + csvRow(4) + "\n" + "High," + csvRow(5) + "\n"
	rows := readAll(t, strings.NewReader(input), jobfile.CSV)
	if len(rows) != 5 {
		t.Fatalf("rows = %+v", rows)
	}
	for i, want := range []launch.Priority{launch.PriorityHigh, "", launch.PriorityLow} {
		if rows[i].Err != nil || rows[i].Job.Priority != want {
			t.Errorf("row %d: priority %q (%v), want %q", i+1, rows[i].Job.Priority, rows[i].Err, want)
		}
	}
	for _, r := range rows[3:] {
		if errs := problems(t, r.Err); len(errs) != 1 || errs[0].Field != "priority" ||
			!strings.Contains(errs[0].Reason, "must be high, default or low") {
			t.Errorf("line %d: %v, want one error of field priority", r.Line, r.Err)
		}
	}
	if rows[3].Line != 5 || rows[4].Line != 6 {
		t.Errorf("bad rows on lines %d and %d, want 5 and 6", rows[3].Line, rows[4].Line)
	}
}

func TestCSVFieldErrors(t *testing.T) {
	input := "agent_no,video_uris,regions,launch_type,id\n" +
		`1,https://a.example|ftp://b.example|,a:b|:x|IN| |c:,x,-id` + "\n"
	rows := readAll(t, strings.NewReader(input), jobfile.CSV)
	if len(rows) != 1 {
		t.Fatalf("rows = %+v", rows)
	}
	var got []string
	for _, fe := range problems(t, rows[0].Err) {
		got = append(got, fe.Field)
	}
	want := []string{
		"id",
		"launch.optin_description", "launch.trigger_description", "launch.interactions_description",
		"launch.optout_description", "launch.agent_access_instructions",
		"launch.launch_type",
		"launch.video_uris[1]", "launch.video_uris[2]",
		"regions[0].region_id",
		"regions[3].region",
		"regions[4].region", "regions[4].region_id",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems on\n%q\nwant\n%q\n(%v)", got, want, rows[0].Err)
	}
}

// TestSameProblemsBothFormats checks that a job gets the same field errors,
// word for word, whether it comes as JSONL or as CSV.
func TestSameProblemsBothFormats(t *testing.T) {
	jsonl := `{"launch":{"agent_no":"1","optin_description":"in","trigger_description":" ",` +
		`"interactions_description":"i","optout_description":"o","agent_access_instructions":"a",` +
		`"launch_type":"x","video_uris":["https://ok.example","nope"]},"regions":[{"region":"IN","region_id":"r1"}]}`
	csvData := "agent_no,optin_description,trigger_description,interactions_description,optout_description," +
		"agent_access_instructions,launch_type,video_uris,regions\n" +
		"1,in, ,i,o,a,x,https://ok.example|nope,r1:IN\n"
	a := readAll(t, strings.NewReader(jsonl), jobfile.JSONL)
	b := readAll(t, strings.NewReader(csvData), jobfile.CSV)
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("rows: %+v %+v", a, b)
	}
	pa, pb := problems(t, a[0].Err), problems(t, b[0].Err)
	if !reflect.DeepEqual(pa, pb) || len(pa) != 4 {
		t.Errorf("JSONL problems %q\ndiffer from CSV problems %q", pa, pb)
	}
}

// TestInvalidUTF8 checks that text encoding/json would repair to U+FFFD
// (invalid UTF-8, a lone surrogate escape) rejects its JSONL row with the
// line and field, in the same words as the same text in a CSV cell, and that
// reading goes on with the next row.
func TestInvalidUTF8(t *testing.T) {
	jsonl := jobLine(1) + "\n" +
		strings.Replace(jobLine(2), `"Reply START"`, "\"Reply \xffSTART\"", 1) + "\n" +
		"\n" +
		strings.Replace(jobLine(4), `"agent_no":"4"`, "\"agent_no\":\"4\\ud800\",\"video_uris\":[\"https://a.example/\xc3\"]", 1) + "\n" +
		jobLine(5) + "\n"
	check(t, readAll(t, strings.NewReader(jsonl), jobfile.JSONL), []want{
		{line: 1, agent: "1"},
		{line: 2, field: "launch.optin_description", reason: "must be valid UTF-8"},
		{line: 4, field: "launch.agent_no", reason: "must be valid UTF-8"},
		{line: 5, agent: "5"},
	})
	rows := readAll(t, strings.NewReader(jsonl), jobfile.JSONL)
	if got := problems(t, rows[2].Err); len(got) != 2 || got[1].Field != "launch.video_uris[0]" || got[1].Reason != "must be valid UTF-8" {
		t.Errorf("line 4: problems %q, want agent_no and video_uris[0]", got)
	}

	csvData := csvHeader + ",video_uris\n" +
		"2,Reply \xffSTART,START,Order updates,Reply STOP,Test number,\n" +
		"4\xed\xa0\x80,Reply START,START,Order updates,Reply STOP,Test number,https://a.example/\xc3\n"
	fromCSV := readAll(t, strings.NewReader(csvData), jobfile.CSV)
	if len(fromCSV) != 2 {
		t.Fatalf("CSV rows: %+v", fromCSV)
	}
	for i, r := range []jobfile.Row{rows[1], rows[2]} {
		if pj, pc := problems(t, r.Err), problems(t, fromCSV[i].Err); !reflect.DeepEqual(pj, pc) {
			t.Errorf("JSONL line %d: problems %q differ from CSV's %q", r.Line, pj, pc)
		}
	}
}

func TestCSVHeaderErrors(t *testing.T) {
	for _, tc := range []struct {
		input, column, reason string
		line                  int
	}{
		{"", "", "the file is empty", 1},
		{"\n\n", "", "the file is empty", 1},
		{"\ufeff", "", "the file is empty", 1},
		{"agent_no,optin_desription\n1,x\n", "optin_desription",
			`unknown column "optin_desription" (column 2); did you mean "optin_description"?`, 1},
		{"Agent_No\n", "Agent_No", `unknown column "Agent_No" (column 1); did you mean "agent_no"?`, 1},
		{"agent_no,region\n", "region", `did you mean "regions"?`, 1},
		{"agent_no,status\n", "status", `unknown column "status" (column 2); the columns are id, sid, priority, agent_no, launch_type,`, 1},
		{"agent_no,launch_type, agent_no \n", "agent_no", `column "agent_no" appears more than once (columns 1 and 3)`, 1},
		{"\nagent_no,,launch_type\n", "", "column 2 has no name", 2},
		{"agent_no,\n", "", "column 2 has no name", 1},
		{"agent_no,\"launch_type\nx\n", "", `invalid CSV: extraneous or missing " in quoted-field`, 1},
		{"agent_\"no\n", "", `invalid CSV: bare " in non-quoted-field (line 1, column 7)`, 1},
	} {
		_, err := jobfile.NewReader(strings.NewReader(tc.input), jobfile.CSV)
		var he *jobfile.HeaderError
		if !errors.As(err, &he) {
			t.Errorf("NewReader(%q) = %v, want a *HeaderError", tc.input, err)
			continue
		}
		if he.Column != tc.column || he.Line != tc.line || !strings.Contains(he.Reason, tc.reason) {
			t.Errorf("NewReader(%q) = %+v, want column %q, line %d, reason …%s…", tc.input, he, tc.column, tc.line, tc.reason)
		}
		if !strings.HasPrefix(err.Error(), fmt.Sprintf("CSV header (line %d): ", tc.line)) {
			t.Errorf("error text %q", err)
		}
	}
	// A header alone is a file without jobs.
	check(t, readAll(t, strings.NewReader(csvHeader+"\n"), jobfile.CSV), nil)
	// Missing columns are fine; validation names the fields.
	check(t, readAll(t, strings.NewReader("id\njob-1\n"), jobfile.CSV), []want{
		{line: 2, field: "launch.optin_description", reason: "is required"},
	})
}

// TestCSVRowTooLong checks that an unbalanced quote, which makes the rest of
// the file one cell, stops reading instead of filling memory.
func TestCSVRowTooLong(t *testing.T) {
	input := csvHeader + "\n" + csvRow(1) + "\n" + `2,"` + strings.Repeat("x\n", 1<<20)
	rd, err := jobfile.NewReader(strings.NewReader(input), jobfile.CSV)
	if err != nil {
		t.Fatal(err)
	}
	if row, err := rd.Next(); err != nil || row.Err != nil {
		t.Fatalf("first row: %+v %v", row, err)
	}
	_, err = rd.Next()
	if err == nil || !strings.Contains(err.Error(), "the row after line 2") || !strings.Contains(err.Error(), "closing quote") {
		t.Fatalf("Next = %v, want a fatal error about a long row", err)
	}
	// A long but well-formed row is a row error, and reading goes on.
	long := strings.Repeat("y", 300<<10)
	input = csvHeader + "\n" + `1,"` + long + `",b,c,d,e` + "\n" + csvRow(3) + "\n"
	check(t, readAll(t, strings.NewReader(input), jobfile.CSV), []want{
		{line: 2, field: "launch.optin_description", reason: "must be at most 2000 characters"},
		{line: 3, agent: "3"},
	})
	if _, err := jobfile.NewReader(strings.NewReader(`"`+long+long+long+long), jobfile.CSV); err == nil ||
		!strings.Contains(err.Error(), "header row is longer") {
		t.Errorf("NewReader with an endless header = %v", err)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	jobs := []launch.Job{
		{
			ID: "job-1",
			Launch: launch.Launch{
				AgentAccessInstructions: "Tester: <b>Alice</b> & Bob",
				AgentNo:                 "48900",
				InteractionsDescription: "Line one\nline two, \"quoted\"",
				LaunchName:              "launch_48900",
				LaunchType:              "2",
				OptinDescription:        "Reply START → ✓",
				OptoutDescription:       "Reply STOP",
				ProviderLaunchID:        "launch_001",
				ScreenshotURIs:          []string{"https://example.com/s?a=1&b=2"},
				TriggerDescription:      "START",
				VideoURIs:               []string{"https://example.com/v1", "https://example.com/v2"},
			},
			Regions: []launch.Region{{Region: "IN", RegionID: "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8"}, {Region: "a:b"}},
		},
		{
			// An account and a priority of its own, which Write keeps.
			ID: "job-2", SID: "HX_2", Priority: launch.PriorityLow,
			Launch: launch.Launch{
				AgentAccessInstructions: "a", AgentNo: "2", InteractionsDescription: "i", LaunchType: "1",
				OptinDescription: "in", OptoutDescription: "o", TriggerDescription: "t",
			},
		},
		{
			// No ID and no launch_type: Write applies the default.
			Launch: launch.Launch{
				AgentAccessInstructions: "a", AgentNo: "1", InteractionsDescription: "i",
				OptinDescription: "in", OptoutDescription: "o", TriggerDescription: "t",
			},
		},
	}
	var buf bytes.Buffer
	for _, j := range jobs {
		if err := jobfile.Write(&buf, j); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	if strings.Count(out, "\n") != len(jobs) || !strings.HasSuffix(out, "\n") {
		t.Fatalf("Write output is not one line per job:\n%s", out)
	}
	if !strings.Contains(out, "<b>Alice</b> & Bob") || !strings.Contains(out, "?a=1&b=2") {
		t.Errorf("Write escaped HTML:\n%s", out)
	}
	if !strings.HasPrefix(out, `{"id":"job-1","launch":{"agent_access_instructions":`) {
		t.Errorf("Write output does not start with the ID and sorted keys:\n%s", out)
	}
	if !strings.Contains(out, "\n"+`{"id":"job-2","sid":"HX_2","priority":"low","launch":{`) {
		t.Errorf("Write of a job with an account and a priority:\n%s", out)
	}
	if !strings.Contains(out, "\n"+`{"launch":{`) || !strings.Contains(out, `"launch_type":"1"`) {
		t.Errorf("Write of a job without ID or launch_type:\n%s", out)
	}

	rows := readAll(t, strings.NewReader(out), jobfile.JSONL)
	if len(rows) != len(jobs) {
		t.Fatalf("read back %d rows, want %d", len(rows), len(jobs))
	}
	for i, r := range rows {
		want := jobs[i]
		want.ApplyDefaults()
		if r.Err != nil || r.Line != i+1 || !reflect.DeepEqual(r.Job, want) {
			t.Errorf("row %d read back as %+v (%v), want %+v", i, r.Job, r.Err, want)
		}
		if launch.DeriveID("S", r.Job) != launch.DeriveID("S", jobs[i]) {
			t.Errorf("row %d: derived ID changed", i)
		}
	}

	// Write reports the writer's error.
	boom := errors.New("pipe closed")
	if err := jobfile.Write(errWriter{boom}, jobs[0]); !errors.Is(err, boom) {
		t.Errorf("Write to a failing writer = %v", err)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }
