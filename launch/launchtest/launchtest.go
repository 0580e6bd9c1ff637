// Package launchtest is the valid launch job the tests of every package start
// from, so that a change to what a valid job is made of is made once. Tests
// that need another job derive it from this one.
package launchtest

import (
	"encoding/json"

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
