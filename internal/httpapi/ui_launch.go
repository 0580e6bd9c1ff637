package httpapi

// The launch follow-up in the web UI (FOLLOW_LAUNCH): a job's page with its
// launch state and follow-up, and launch states on the batch pages. RCS902
// only submits a launch; these say whether the agent actually went live.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/rcslaunch/rcslaunch/internal/display"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/ops"
)

// uiLaunchCount is a batch's followed successes in one launch state, with
// the URL of the batch page listing them.
type uiLaunchCount struct {
	State store.LaunchState
	N     int64
	URL   string
	On    bool // the batch page is filtered by this state
}

// launchCounts are the batch's launch-state counts in display order, every
// state included, each linking to the batch page filtered by it; nil when
// nothing in the batch is followed.
func launchCounts(b ops.Batch, on store.LaunchState) []uiLaunchCount {
	if b.Followed() == 0 { // only then do its pages speak of launch states
		return nil
	}
	path := uiBatchesPath + "/" + url.PathEscape(b.ID)
	out := make([]uiLaunchCount, 0, len(store.LaunchStates))
	for _, s := range store.LaunchStates {
		out = append(out, uiLaunchCount{State: s, N: b.LaunchStates[s],
			URL: withQuery(path, 0, "launch_state", string(s)), On: s == on})
	}
	return out
}

// uiLaunchState reads a launch-state filter; anything else is none.
func uiLaunchState(v string) store.LaunchState {
	for _, s := range store.LaunchStates {
		if string(s) == v {
			return s
		}
	}
	return ""
}

// ---- the job page ----

// uiFollow is a job's launch follow-up as its page shows it.
type uiFollow struct {
	*store.LaunchFollow
	// Next is when the next poll is due, or why following ended.
	Next string
	// Response is the last poll's answer, indented.
	Response string
}

func followOf(f *store.LaunchFollow) *uiFollow {
	if f == nil {
		return nil
	}
	v := &uiFollow{LaunchFollow: f, Response: indentJSON(f.Response)}
	switch f.Ended {
	case store.FollowFinal:
		v.Next = fmt.Sprintf("no more polls: %s is final", f.State)
	case store.FollowExpired:
		v.Next = fmt.Sprintf("gave up: FOLLOW_MAX_AGE passed with the launch still %s", f.State)
	case "":
		v.Next = uiTime(f.NextPollAt)
	default:
		v.Next = "no more polls: " + f.Ended
	}
	return v
}

// indentJSON is data indented for reading, or as it is when it is not JSON.
func indentJSON(data []byte) string {
	var pretty bytes.Buffer
	if json.Indent(&pretty, data, "", "  ") != nil {
		return string(data)
	}
	return pretty.String()
}

type uiJobData struct {
	uiBase
	R ops.Record
	// State is the job's state in one line, as `rcslaunch status` says it.
	State   string
	Follow  *uiFollow
	Payload string
}

// job answers GET /ui/jobs/{id}: any job's record, with its launch state
// and follow-up when it is followed. A dead letter's page is where it is
// retried or deleted; this one links there.
func (u *ui) job(w http.ResponseWriter, r *http.Request, sess uiSession) {
	id := r.PathValue("id")
	rec, err := u.s.ops.Job(r.Context(), id)
	switch {
	case errors.Is(err, ops.ErrNotFound):
		u.fail(w, r, sess, http.StatusNotFound, "Not found", fmt.Sprintf("There is no job with ID %q.", id))
		return
	case err != nil:
		u.internal(w, r, sess, err)
		return
	}
	u.render(w, r, http.StatusOK, "job", uiJobData{uiBase: u.base(w, r, &sess, "Job "+id), R: rec,
		State: display.JobState(rec), Follow: followOf(rec.Launch), Payload: indentJSON(rec.Payload)})
}
