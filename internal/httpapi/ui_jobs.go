package httpapi

import (
	"net/http"
	"strings"

	"github.com/rcslaunch/rcslaunch/internal/display"
	"github.com/rcslaunch/rcslaunch/ops"
)

// uiJobsLimit is how many of an agent's jobs the search page shows.
const uiJobsLimit = 100

// uiJobsData is the agent search page: an agent number's jobs (of one
// account, with SID).
type uiJobsData struct {
	uiBase
	Agent, SID string
	Jobs       []uiJobRow
	Limit      int
	// Launch is set when a job listed has a launch state (FOLLOW_LAUNCH):
	// the list then has a launch-state column.
	Launch bool
}

// uiJobRow is one job of the agent search page.
type uiJobRow struct {
	R     ops.Record
	State string
}

// jobs answers GET /ui/jobs?agent=N&sid=S: the agent's jobs (of account S),
// newest first, each linking to its batch and to its page (a dead letter's:
// its dead-letter page).
func (u *ui) jobs(w http.ResponseWriter, r *http.Request, sess uiSession) {
	q := r.URL.Query()
	agent, sid := uiShort(strings.TrimSpace(q.Get("agent")), 64), uiSID(q.Get("sid"))
	d := uiJobsData{uiBase: u.base(w, r, &sess, "Jobs of agent "+agent), Agent: agent, SID: sid, Limit: uiJobsLimit}
	if agent != "" {
		recs, err := u.s.ops.JobsByAgent(r.Context(), agent, ops.Filter{SID: sid}, uiJobsLimit)
		if err != nil {
			u.internal(w, r, sess, err)
			return
		}
		for _, rec := range recs {
			d.Jobs = append(d.Jobs, uiJobRow{R: rec, State: display.JobState(rec)})
			d.Launch = d.Launch || rec.LaunchState != ""
		}
	}
	u.render(w, r, http.StatusOK, "jobs", d)
}
