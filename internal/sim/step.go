package sim

import "net/http"

// Step is one scripted answer (see Server.Script). Steps named after a
// Kaleyra code answer with that code's documented body and HTTP status; the
// others reproduce answers a client must survive without a usable code.
type Step string

// The steps a script can use.
const (
	StepSucceed       Step = "RCS902"       // success, with a fresh agent_launch_id
	StepGateway       Step = "RCS502"       // Internal Gateway Error, HTTP 500
	StepServerError   Step = "RCS500"       // Internal server error, HTTP 500
	StepMissingFields Step = "RCS904"       // Failed to create Agent launch request, HTTP 400
	StepInvalidJSON   Step = "RCS701"       // Invalid json format passed, HTTP 400
	StepDisabled      Step = "RCS601"       // RCS Channel is not enabled for this User, HTTP 400
	StepThrottle      Step = "HTTP429"      // HTTP 429 {"message":"Too Many Requests"}, no Retry-After
	StepHang          Step = "HANG"         // no answer until the client gives up or ListenAndServe shuts down (httptest.Server.Close waits for it)
	StepEmpty         Step = "EMPTY"        // HTTP 200 with an empty body
	StepHTML          Step = "HTML"         // HTTP 502 with a proxy's HTML error page
	StepTruncated     Step = "TRUNCATED"    // HTTP 200 with the first half of a success body
	StepHuge          Step = "HUGE"         // HTTP 200 with a 10 MiB JSON body, streamed
	StepCodeNotString Step = "CODE_NUMBER"  // a success body whose code is the number 902
	StepNoLaunchID    Step = "NO_LAUNCH_ID" // an RCS902 success body without agent_launch_id
)

// Answers the simulator gives on its own but that cannot be scripted.
const (
	// stepUnauthorized answers a missing or wrong api-key. Kaleyra does not
	// document the code or body it uses for this; the simulator answers HTTP
	// 401 with a Kaleyra-shaped body, code "RCS401", error_code
	// "UNAUTHORIZED".
	stepUnauthorized Step = "RCS401"
	// stepMethod answers a method other than POST on the launch route (or
	// GET on the status route).
	stepMethod Step = "RCS405"
	// stepNotFound answers a status call for a launch the simulator did not
	// issue to that agent, and stepBadQuery one without agent_number or
	// agent_launch_id. Kaleyra documents neither; the codes are made up in
	// its style.
	stepNotFound Step = "RCS404"
	stepBadQuery Step = "RCS400"
)

// status is the HTTP status each answer comes with: the Kaleyra codes' as
// listed in Kaleyra's "Agent Launch error codes" table, 0 for a hang.
var status = map[Step]int{
	StepSucceed:       http.StatusOK,
	StepGateway:       http.StatusInternalServerError,
	StepServerError:   http.StatusInternalServerError,
	StepMissingFields: http.StatusBadRequest,
	StepInvalidJSON:   http.StatusBadRequest,
	StepDisabled:      http.StatusBadRequest,
	StepThrottle:      http.StatusTooManyRequests,
	StepHang:          0,
	StepEmpty:         http.StatusOK,
	StepHTML:          http.StatusBadGateway,
	StepTruncated:     http.StatusOK,
	StepHuge:          http.StatusOK,
	StepCodeNotString: http.StatusOK,
	StepNoLaunchID:    http.StatusOK,
	stepUnauthorized:  http.StatusUnauthorized,
	stepMethod:        http.StatusMethodNotAllowed,
	stepNotFound:      http.StatusNotFound,
	stepBadQuery:      http.StatusBadRequest,
}

// scriptable lists the steps in the order they are documented, for
// validation and error messages.
var scriptable = []Step{
	StepSucceed, StepGateway, StepServerError, StepMissingFields, StepInvalidJSON,
	StepDisabled, StepThrottle, StepHang, StepEmpty, StepHTML, StepTruncated,
	StepHuge, StepCodeNotString, StepNoLaunchID,
}

func (st Step) valid() bool {
	for _, known := range scriptable {
		if st == known {
			return true
		}
	}
	return false
}

// failure is a documented Kaleyra failure answer.
type failure struct {
	message, errorCode, errorMessage string
}

// failures holds the failure bodies as Kaleyra's samples show them. RCS500's
// and RCS401's error_code are not documented; the ones here are made up in
// the same style.
var failures = map[Step]failure{
	StepMissingFields: {"Failed to create Agent launch request", "PROV_ERROR", provError(missingFields)},
	StepInvalidJSON:   {"Invalid json format passed", "INVALID_JSON_PAYLOAD", "invalid character '}' looking for beginning of object key string"},
	StepDisabled:      {"RCS Channel is not enabled for this User", "RCS_CHANNEL_DISABLED", "RCS Channel is not enabled for this User"},
	stepMethod:        {"Method not allowed", "METHOD_NOT_ALLOWED", "Method not allowed"},
	StepGateway:       {"Internal Gateway Error", "RCS_CHANNEL_INTERNAL_ERROR", "Internal Gateway Error"},
	StepServerError:   {"Internal server error", "INTERNAL_SERVER_ERROR", "Internal server error"},
	stepUnauthorized:  {"Unauthorized", "UNAUTHORIZED", "Invalid or missing api-key"},
	stepNotFound:      {"Agent launch not found", "NOT_FOUND", "Agent launch not found"},
	stepBadQuery:      {"Invalid request parameters", "INVALID_PARAMS", "Invalid request parameters"},
}

// missingFields is the message of Kaleyra's documented RCS904 sample.
const missingFields = "Missing required fields in launch payload"

// provError is the error_message of an RCS904: the provisioning service's
// own JSON answer, as a string, exactly as in Kaleyra's sample.
func provError(message string) string {
	return `{"status":"FAILED","message":"` + message + `"}`
}
