package jobfile_test

import (
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/rcslaunch/rcslaunch/internal/jobfile"
)

// ExampleReader reads the CSV file shown in the package documentation, plus
// a row with problems, and prints each row's line and outcome.
func ExampleReader() {
	file := `agent_no,optin_description,trigger_description,interactions_description,optout_description,agent_access_instructions,video_uris,regions
48900,Customers reply START,START,Order updates,Reply STOP,Test number +91 90000 00000,https://example.com/demo.mp4,IN
48901,"Opt in on our site, then reply START",START,"Order updates
and delivery alerts",Reply STOP,See the attached test plan,,8346a250-d7a9-47dc-8202-a8b1c2d3e4e8:IN-north|IN-south
48902,Customers reply START,,Order updates,Reply STOP,Test number,example.com/demo.mp4,
`
	rd, err := jobfile.NewReader(strings.NewReader(file), jobfile.CSV)
	if err != nil {
		log.Fatal(err)
	}
	for {
		row, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		if row.Err != nil {
			fmt.Printf("line %d: %v\n", row.Line, row.Err)
			continue
		}
		fmt.Printf("line %d: agent %s, %d region(s)\n", row.Line, row.Job.Launch.AgentNo, len(row.Job.Regions))
	}
	// Output:
	// line 2: agent 48900, 1 region(s)
	// line 3: agent 48901, 2 region(s)
	// line 5: invalid job: launch.trigger_description: is required and must be a non-empty string; launch.video_uris[0]: must be an absolute http(s) URL, got "example.com/demo.mp4"
}

// ExampleWrite writes a job the way "rcslaunch dlq export" does: one JSONL
// line, with its ID, that "rcslaunch enqueue --file" reads back.
func ExampleWrite() {
	rd, _ := jobfile.NewReader(strings.NewReader(`{"id":"job-7","launch":{"agent_no":"48900",`+
		`"optin_description":"Reply <START>","trigger_description":"START","interactions_description":"Updates & alerts",`+
		`"optout_description":"Reply STOP","agent_access_instructions":"Test number"}}`), jobfile.JSONL)
	row, _ := rd.Next()
	if err := jobfile.Write(os.Stdout, row.Job); err != nil {
		log.Fatal(err)
	}
	// Output:
	// {"id":"job-7","launch":{"agent_access_instructions":"Test number","agent_no":"48900","interactions_description":"Updates & alerts","launch_type":"1","optin_description":"Reply <START>","optout_description":"Reply STOP","trigger_description":"START"}}
}
