package main

import (
	"bytes"
	"context"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/config"
)

// composeFile is the part of docker-compose.yml the checks read.
type composeFile struct {
	Services map[string]struct {
		Build       any               `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Deploy      struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"deploy"`
	} `yaml:"services"`
}

// envNames lists every variable the binary reads, from config.Config's tags.
func envNames() map[string]bool {
	names := map[string]bool{}
	t := reflect.TypeOf(config.Config{})
	for i := 0; i < t.NumField(); i++ {
		if n := t.Field(i).Tag.Get("envconfig"); n != "" {
			names[n] = true
		}
	}
	return names
}

// No Docker engine runs here, so the compose file is checked by reading it:
// every service of ours runs a real command with real flags and only
// variables the binary reads, and the stack has what the README promises.
func TestComposeFileMatchesTheBinary(t *testing.T) {
	data, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(data, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	known := envNames()
	cmds := map[string]bool{}
	for _, c := range commands() {
		cmds[c.name] = true
	}
	for name, svc := range cf.Services {
		if svc.Build == nil { // not our image (redis)
			continue
		}
		if len(svc.Command) == 0 || !cmds[svc.Command[0]] {
			t.Errorf("service %s: command %v is not an rcslaunch command", name, svc.Command)
			continue
		}
		var help bytes.Buffer
		run(context.Background(), []string{svc.Command[0], "--help"}, cli.Stdio{In: strings.NewReader(""), Out: &help, Err: &help})
		for _, arg := range svc.Command[1:] {
			if flag, ok := strings.CutPrefix(arg, "--"); ok {
				flag, _, _ = strings.Cut(flag, "=")
				if !strings.Contains(help.String(), "-"+flag+" ") && !strings.Contains(help.String(), "-"+flag+"\n") {
					t.Errorf("service %s: %s has no flag --%s", name, svc.Command[0], flag)
				}
			}
		}
		for v := range svc.Environment {
			if !known[v] {
				t.Errorf("service %s: the binary reads no variable %s", name, v)
			}
		}
	}
	redis, ok := cf.Services["redis"]
	if !ok || !slices.Contains(redis.Command, "--appendonly") || !slices.Contains(redis.Command, "yes") {
		t.Errorf("redis service must run with AOF persistence: %+v", redis.Command)
	}
	// docs/guarantees.md's Redis memory settings: compact job records and
	// results stream nodes.
	for _, flag := range []string{"--hash-max-listpack-value", "--stream-node-max-bytes"} {
		if i := slices.Index(redis.Command, flag); i < 0 || i+1 == len(redis.Command) {
			t.Errorf("redis service must run with %s: %+v", flag, redis.Command)
		}
	}
	if w := cf.Services["worker"]; w.Deploy.Replicas != 2 {
		t.Errorf("worker replicas = %d, want 2", w.Deploy.Replicas)
	}
	for _, s := range []string{"serve", "sim", "worker"} {
		if _, ok := cf.Services[s]; !ok {
			t.Errorf("no %s service", s)
		}
	}
	// A token written in the file would be published with it: the user
	// must set each one (Compose stops with the message when it is unset).
	for _, v := range []string{"HTTP_TOKEN", "HTTP_ADMIN_TOKEN"} {
		if _, ok := cf.Services["serve"].Environment[v]; !ok {
			t.Errorf("serve: no %s", v)
		}
	}
	for name, svc := range cf.Services {
		for _, v := range []string{"HTTP_TOKEN", "HTTP_ADMIN_TOKEN"} {
			got, ok := svc.Environment[v]
			if ok && !regexp.MustCompile(`^\$\{`+v+`:\?[^}]*16\+[^}]*\}$`).MatchString(got) {
				t.Errorf("service %s: %s is %q, want ${%s:?<message saying 16+ characters>}", name, v, got, v)
			}
		}
	}
}

func TestDockerfileBuildsTheBinaryAsNonRoot(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/rcslaunch", "USER nonroot", `ENTRYPOINT ["/usr/local/bin/rcslaunch"]`} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if strings.Count(df, "FROM ") < 2 {
		t.Error("Dockerfile is not multi-stage")
	}
}
