package layers

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/rcslaunch/rcslaunch"

// rule forbids pkg to depend, directly or not, on any of forbidden.
type rule struct {
	pkg       string
	forbidden []string
	why       string
}

var rules = []rule{
	{pkg: module + "/internal/config", forbidden: []string{module + "/internal/kaleyra", module + "/worker"},
		why: "config reads the environment for every command; the Kaleyra client and the worker are built from it, not the other way"},
	{pkg: module + "/internal/kaleyra", forbidden: []string{module + "/launch", module + "/internal/config", module + "/worker"},
		why: "the Kaleyra client sends bytes it is given and names its own fields, not launch jobs or environment variables"},
	{pkg: module + "/internal/accounts", forbidden: []string{module + "/internal/config", module + "/internal/kaleyra", module + "/worker"},
		why: "config is to load ACCOUNTS_FILE with it (issue 14), and config must not depend on the Kaleyra client: the single-SID settings come in as accounts.Defaults"},
	{pkg: module + "/ops", forbidden: producerForbidden,
		why: "a producer or operator needs no Kaleyra client, no HTTP stack, no worker, and is configured by its caller, not by rcslaunch's environment"},
	{pkg: module + "/enqueue", forbidden: producerForbidden,
		why: "a producer needs no Kaleyra client, no HTTP stack, no worker, and is configured by its caller, not by rcslaunch's environment"},
}

// producerForbidden is what the public packages that upstream Go code
// imports to enqueue and operate must not pull in.
var producerForbidden = []string{module + "/internal/kaleyra", module + "/worker", module + "/internal/config",
	"github.com/kelseyhightower/envconfig", "net/http"}

// wiring are the internal packages that may use the worker: they configure
// and run it, as cmd/ does (testenv for the tests).
var wiring = []string{module + "/internal/workerenv", module + "/internal/bench", module + "/internal/demo", module + "/internal/testenv"}

func TestImportsPointOneWay(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go tool is not available")
	}
	graph := importGraph(t)
	check := func(r rule) {
		for _, bad := range r.forbidden {
			if path := pathTo(graph, r.pkg, bad); path != nil {
				t.Errorf("%s depends on %s: %s\n\t%s", r.pkg, bad, strings.Join(path, " -> "), r.why)
			}
		}
	}
	for _, r := range rules {
		if _, ok := graph[r.pkg]; !ok {
			t.Errorf("rule for %s: no such package", r.pkg)
			continue
		}
		check(r)
	}
	// The domain packages: every internal package but the wiring ones.
	for pkg := range graph {
		if strings.HasPrefix(pkg, module+"/internal/") && !slices.Contains(wiring, pkg) {
			check(rule{pkg: pkg, forbidden: []string{module + "/worker"},
				why: "domain packages serve the worker; the worker (or cmd/) wires them"})
		}
	}
}

// importGraph returns every package of the module and its dependencies, each
// with its direct imports, from go list -deps.
func importGraph(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	graph := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		graph[fields[0]] = fields[1:]
	}
	return graph
}

// pathTo returns a shortest import path from one package to another, or nil
// when from does not depend on to.
func pathTo(graph map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		if pkg == to {
			var path []string
			for p := to; p != ""; p = prev[p] {
				path = append(path, p)
			}
			slices.Reverse(path)
			return path
		}
		for _, imp := range graph[pkg] {
			if _, seen := prev[imp]; !seen {
				prev[imp] = pkg
				queue = append(queue, imp)
			}
		}
	}
	return nil
}

func TestPathTo(t *testing.T) {
	g := map[string][]string{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": nil}
	if got := fmt.Sprint(pathTo(g, "a", "d")); got != "[a b d]" {
		t.Errorf("pathTo(a, d) = %s", got)
	}
	if got := pathTo(g, "d", "a"); got != nil {
		t.Errorf("pathTo(d, a) = %v, want nil", got)
	}
}
