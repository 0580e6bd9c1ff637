package kaleyra_test

// The answers in Kaleyra's "Launch an Agent" page, byte for byte.
const (
	// sampleDocSuccess is the documented success answer. It is not valid JSON:
	// the "data": key before the second object is missing.
	sampleDocSuccess = `{
"code": "RCS902",
"message": "Agent launch request created successfully",
{
"launch": {
"provider_launch_id": "launch_001_google_rcs",
"launch_name": "launch__48900",
"launch_type": 1,
"optin_description": "Bigbasket Optin",
"trigger_description": "START",
"interactions_description": "Demo Messages",
"optout_description": "Stop",
"agent_access_instructions": "This is a demo account",
"video_uris": [
"https://www.example.com/videos"
],
"screenshot_uris": [
"https://www.example.com/uris"
],
"status": "ACTIVE",
"create_date": "Jan 12, 2026, 12:42:58 PM",
"modified_date": "Jan 12, 2026, 12:42:58 PM",
"agent_launch_id": "1370ed9d-53ed-47ec-b150-e2XXXXXXXX3d"
},
"regions": [
{
"region_id": "8346a250-d7a9-47dc-8202-a8XXXXXXXXe8",
"region": "4f4bf2b0-5110-44e1-9aa1-43392c7d3b17",
"entry_point": 0,
"launch_state": 0,
"dirty_flag": "NEW"
}
],
"contacts": []
},
"error": {}
}`

	// sampleRCS904 is "Missing Required Fields".
	sampleRCS904 = `{
"code": "RCS904",
"message": "Failed to create Agent launch request",
"data": [],
"error": {
"error_code": "PROV_ERROR",
"error_message": "{\"status\":\"FAILED\",\"message\":\"Missing required fields in launch payload\"}"
}
}`

	// sampleRCS701 is "Invalid JSON".
	sampleRCS701 = `{
"code": "RCS701",
"message": "Invalid json format passed",
"data": [],
"error": {
"error_code": "INVALID_JSON_PAYLOAD",
"error_message": "invalid character '}' looking for beginning of object key string"
}
}`

	// sampleRCS601 is "RCS Not Enabled".
	sampleRCS601 = `{
"code": "RCS601",
"message": "RCS Channel is not enabled for this User",
"data": [],
"error": {
"error_code": "RCS_CHANNEL_DISABLED",
"error_message": "RCS Channel is not enabled for this User"
}
}`

	// sampleRCS405 is "Method Not Allowed".
	sampleRCS405 = `{
"code": "RCS405",
"message": "Method not allowed",
"data": [],
"error": {
"error_code": "METHOD_NOT_ALLOWED",
"error_message": "Method not allowed"
}
}`

	// sampleRCS502 is "Gateway Error".
	sampleRCS502 = `{
"code": "RCS502",
"message": "Internal Gateway Error",
"data": [],
"error": {
"error_code": "RCS_CHANNEL_INTERNAL_ERROR",
"error_message": "Internal Gateway Error"
}
}`
)

// sampleSuccess is the documented success answer with the missing "data":
// restored, the shape Kaleyra really sends.
const sampleSuccess = `{
"code": "RCS902",
"message": "Agent launch request created successfully",
"data": {
"launch": {
"provider_launch_id": "launch_001_google_rcs",
"launch_name": "launch__48900",
"launch_type": 1,
"optin_description": "Bigbasket Optin",
"trigger_description": "START",
"interactions_description": "Demo Messages",
"optout_description": "Stop",
"agent_access_instructions": "This is a demo account",
"video_uris": [
"https://www.example.com/videos"
],
"screenshot_uris": [
"https://www.example.com/uris"
],
"status": "ACTIVE",
"create_date": "Jan 12, 2026, 12:42:58 PM",
"modified_date": "Jan 12, 2026, 12:42:58 PM",
"agent_launch_id": "1370ed9d-53ed-47ec-b150-e2XXXXXXXX3d"
},
"regions": [
{
"region_id": "8346a250-d7a9-47dc-8202-a8XXXXXXXXe8",
"region": "4f4bf2b0-5110-44e1-9aa1-43392c7d3b17",
"entry_point": 0,
"launch_state": 0,
"dirty_flag": "NEW"
}
],
"contacts": []
},
"error": {}
}`

// sampleRCS500 is the "Internal server error" answer from Kaleyra's error
// code table, in the shape of the documented failures.
const sampleRCS500 = `{"code":"RCS500","message":"Internal server error.","data":[],"error":{"error_code":"INTERNAL_SERVER_ERROR","error_message":"Internal server error."}}`
