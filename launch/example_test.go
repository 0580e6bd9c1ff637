package launch_test

import (
	"errors"
	"fmt"

	"github.com/rcslaunch/rcslaunch/launch"
)

// Example parses one job as it would appear on a JSONL line, prints the body
// Kaleyra receives (launch_type defaulted, keys sorted) and the job ID
// derived from it for the account "SID1".
func Example() {
	line := []byte(`{"launch": {
		"agent_no": "48900",
		"optin_description": "Customers reply START",
		"trigger_description": "START",
		"interactions_description": "Order updates",
		"optout_description": "Reply STOP",
		"agent_access_instructions": "Test number +91 90000 00000",
		"video_uris": ["https://example.com/demo.mp4"]},
	  "regions": [{"region": "IN"}]}`)

	job, err := launch.Parse(line)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(job.Body()))
	fmt.Println(launch.DeriveID("SID1", job))
	// Output:
	// {"launch":{"agent_access_instructions":"Test number +91 90000 00000","agent_no":"48900","interactions_description":"Order updates","launch_type":"1","optin_description":"Customers reply START","optout_description":"Reply STOP","trigger_description":"START","video_uris":["https://example.com/demo.mp4"]},"regions":[{"region":"IN"}]}
	// 32280217cf9b358af5de834ba6ce79b8
}

// ExampleParse_invalid shows that Parse reports every problem of a job at
// once, each with the path of its field.
func ExampleParse_invalid() {
	_, err := launch.Parse([]byte(`{"launch": {
		"agent_no": "48900",
		"optin_desription": "Customers reply START",
		"trigger_description": "START",
		"interactions_description": "Order updates",
		"optout_description": "Reply STOP",
		"agent_access_instructions": "Test number +91 90000 00000",
		"video_uris": ["example.com/demo.mp4"]},
	  "regions": [{"region": "IN", "region_id": "in-1"}]}`))

	var ve *launch.ValidationError
	if errors.As(err, &ve) {
		for _, fe := range ve.Errors {
			fmt.Printf("%s: %s\n", fe.Field, fe.Reason)
		}
	}
	// Output:
	// launch.optin_desription: unknown field (did you mean "optin_description"?)
	// launch.optin_description: is required and must be a non-empty string
	// launch.video_uris[0]: must be an absolute http(s) URL, got "example.com/demo.mp4"
	// regions[0].region_id: must be a UUID such as 8346a250-d7a9-47dc-8202-a8b1c2d3e4e8, got "in-1"
}
