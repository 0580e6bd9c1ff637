// Package launchtest is the valid launch job the tests of every package start
// from, so that a change to what a valid job is made of is made once. Tests
// that need another job derive it from this one.
package launchtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/launch"
)

// RegionID is the fixture's region_id, a valid UUID.
const RegionID = "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8"

// Job is a valid launch job for agentNo, every text field and URI naming the
// agent so that two agents' jobs (and derived IDs) differ. Optional fields
// are set (launch_name, video and screenshot URIs, a region with its ID),
// launch_type is left to its default, and the job has no ID.
func Job(agentNo string) launch.Job {
	return launch.Job{
		Launch: launch.Launch{
			AgentNo:                 agentNo,
			OptinDescription:        "Customers opt in on the checkout page",
			TriggerDescription:      "The customer sends START",
			InteractionsDescription: "Order and delivery updates",
			OptoutDescription:       "Reply STOP at any time",
			AgentAccessInstructions: "Test agent " + agentNo + "; no login needed",
			LaunchName:              "launch_" + agentNo,
			VideoURIs:               []string{"https://www.example.com/videos/" + agentNo + ".mp4"},
			ScreenshotURIs:          []string{"https://www.example.com/screens/" + agentNo + ".png"},
		},
		Regions: []launch.Region{{RegionID: RegionID, Region: "IN-" + agentNo}},
	}
}

// Map is Job as a generic JSON object, for tests that change, add or delete
// fields (launch fields under "launch").
func Map(agentNo string) map[string]any {
	b, err := json.Marshal(Job(agentNo))
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	// Left out, as Job leaves it to its default (launch.Launch writes it
	// out even when empty).
	delete(m["launch"].(map[string]any), "launch_type")
	return m
}

// Line is one job as a JSONL line: Map for agentNo, with id when not empty
// and change (when not nil) applied to its "launch" object.
func Line(id, agentNo string, change func(l map[string]any)) string {
	m := Map(agentNo)
	if id != "" {
		m["id"] = id
	}
	if change != nil {
		change(m["launch"].(map[string]any))
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Texts returns every text of j: its ID, each string of its launch, each URI
// and each region's name and ID, for tests that check a property of all of
// them (such as fuzz targets checking that what parses is valid UTF-8).
func Texts(j launch.Job) []string {
	l := j.Launch
	out := []string{j.ID, l.AgentAccessInstructions, l.AgentNo, l.InteractionsDescription, l.LaunchName,
		l.LaunchType, l.OptinDescription, l.OptoutDescription, l.ProviderLaunchID, l.TriggerDescription}
	out = append(out, l.VideoURIs...)
	out = append(out, l.ScreenshotURIs...)
	for _, r := range j.Regions {
		out = append(out, r.Region, r.RegionID)
	}
	return out
}

// CheckText reports what is wrong with the texts of j, a job some parser
// accepted from input: "" when each is valid UTF-8 and holds U+FFFD only
// where input spelled it out (as UTF-8 or as a \ufffd escape), so that no
// text was silently repaired on the way in.
func CheckText(j launch.Job, input []byte) string {
	spelled := bytes.Contains(input, []byte("\ufffd")) || bytes.Contains(bytes.ToLower(input), []byte(`\ufffd`))
	for _, s := range Texts(j) {
		switch {
		case !utf8.ValidString(s):
			return fmt.Sprintf("text %q is not valid UTF-8", s)
		case strings.ContainsRune(s, utf8.RuneError) && !spelled:
			return fmt.Sprintf("text %q holds U+FFFD that the input does not", s)
		}
	}
	return ""
}
