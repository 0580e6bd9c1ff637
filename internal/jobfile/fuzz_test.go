package jobfile_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/jobfile"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

// checkRows reads every row of data and checks what every format promises:
// no panic, rows on strictly increasing lines from 1, and each row either a
// valid job (with valid UTF-8 text, none of it repaired to U+FFFD, that
// Write and a JSONL Reader carry unchanged) or a *launch.ValidationError with
// at least one field error.
func checkRows(t *testing.T, data []byte, f jobfile.Format) {
	rd, err := jobfile.NewReader(bytes.NewReader(data), f)
	if err != nil {
		var he *jobfile.HeaderError
		if f != jobfile.CSV || !errors.As(err, &he) || he.Line < 1 || he.Reason == "" {
			t.Fatalf("NewReader: %v (%T)", err, err)
		}
		return
	}
	last := 0
	for {
		row, err := rd.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			// Only a CSV row longer than the limit can stop a file held
			// in memory.
			if f != jobfile.CSV || len(data) < 1<<20 {
				t.Fatalf("Next after line %d: %v", last, err)
			}
			return
		}
		if row.Line < 1 || row.Line <= last {
			t.Fatalf("row on line %d after line %d", row.Line, last)
		}
		last = row.Line
		if row.Err != nil {
			var ve *launch.ValidationError
			if !errors.As(row.Err, &ve) || len(ve.Errors) == 0 {
				t.Fatalf("line %d: row error %v (%T) is not a *launch.ValidationError with field errors", row.Line, row.Err, row.Err)
			}
			continue
		}
		if err := row.Job.Validate(); err != nil {
			t.Fatalf("line %d: a row without error holds an invalid job: %v", row.Line, err)
		}
		if problem := launchtest.CheckText(row.Job, data); problem != "" {
			t.Fatalf("line %d: %s", row.Line, problem)
		}
		if row.Job.Launch.LaunchType == "" {
			t.Fatalf("line %d: defaults not applied", row.Line)
		}
		var buf bytes.Buffer
		if err := jobfile.Write(&buf, row.Job); err != nil {
			t.Fatal(err)
		}
		back, err := jobfile.NewReader(&buf, jobfile.JSONL)
		if err != nil {
			t.Fatal(err)
		}
		again, err := back.Next()
		if err != nil || again.Err != nil || again.Line != 1 {
			t.Fatalf("line %d: Write output does not read back: %v %v\n%q", row.Line, err, again.Err, buf.String())
		}
		if again.Job.ID != row.Job.ID || again.Job.Priority != row.Job.Priority || !bytes.Equal(again.Job.Body(), row.Job.Body()) {
			t.Fatalf("line %d: read back as %+v, want %+v", row.Line, again.Job, row.Job)
		}
	}
}

func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		jobLine(1) + "\n" + jobLine(2) + "\n",
		"\ufeff" + jobLine(1) + "\r\n\r\n  \n" + `{"id":"x y","launch":{}}`,
		`{"launch":{"optin_desription":"x","agent_no":1}}` + "\n{\n}\n",
		`{"launch":{"optin_description":"<&>\u2028","trigger_description":"t","interactions_description":"i",` +
			`"optout_description":"o","agent_access_instructions":"a","agent_no":"1","video_uris":["https://x.example"]},` +
			`"regions":[{"region":"IN","region_id":"8346a250-d7a9-47dc-8202-a8b1c2d3e4e8"}]}`,
		"\n\n\r\n",
		"",
		// Text encoding/json would repair to U+FFFD, then a line that only
		// looks like it.
		jobLine(1) + "\n" + strings.Replace(jobLine(2), `"agent_no":"`, "\"agent_no\":\"\xff", 1) + "\n" +
			strings.Replace(jobLine(3), `"agent_no":"`, `"agent_no":"\udc00`, 1) + "\n",
		strings.Replace(jobLine(4), `"agent_no":"`, `"launch_name":"\ufffd\ud83d\ude00","agent_no":"`, 1) + "\n" +
			strings.Replace(jobLine(5), `"agent_no":"`, `"launch_name":"\ud83d\u0041","agent_no":"`, 1),
		strings.Replace(jobLine(1), `{`, `{"priority":"low",`, 1) + "\n" + strings.Replace(jobLine(2), `{`, `{"priority":"soon",`, 1) + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkRows(t, data, jobfile.JSONL) })
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		csvHeader + "\n" + csvRow(1) + "\n" + csvRow(2) + "\n",
		"\ufeff" + csvHeader + "\r\n" + `1,"a, ""b""","multi` + "\r\n" + `line",i,o,a` + "\r\n",
		"id,agent_no,video_uris,screenshot_uris,regions,launch_type\n" +
			"j1,1,https://a.example|https://b.example, https://c.example ,8346a250-d7a9-47dc-8202-a8b1c2d3e4e8:IN|:a:b|x,2\n",
		csvHeader + "\n1,2\n,,,,,\n" + `3,bare "q,x,x,x,x` + "\n" + `"4` + "\n",
		"agent_no,optin_desription\n1,x\n",
		"agent_no,agent_no\n",
		"priority," + csvHeader + "\nhigh," + csvRow(1) + "\n," + csvRow(2) + "\nHigh," + csvRow(3) + "\nurgent," + csvRow(4) + "\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkRows(t, data, jobfile.CSV) })
}
