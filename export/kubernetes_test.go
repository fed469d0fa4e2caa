package export

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"sigs.k8s.io/yaml"

	"mhrun/formation"
	"mhrun/policy"
)

var testKubernetes = KubernetesOptions{App: "shop", Image: "registry.example.com/shop:1.4", Namespace: "shop"}

func TestKubernetesGolden(t *testing.T) {
	files, warnings, err := Kubernetes(testFormation(t), testKubernetes)
	if err != nil {
		t.Fatal(err)
	}
	files["warnings.txt"] = []byte(strings.Join(warnings, "\n") + "\n")
	compareGolden(t, filepath.Join("testdata", "kubernetes"), files)
}

// decode reads manifest name of files back into export's own type of its
// kind, strictly: an unknown field fails. That those types are true to
// the official ones (k8s.io/api) is held in k8svalidate, a module of its
// own, where every manifest is also decoded strictly into the official
// types and passes the API server's validation.
func decode[T any](t *testing.T, files map[string][]byte, name string) *T {
	t.Helper()
	var v T
	if err := yaml.UnmarshalStrict(files[name], &v); err != nil {
		t.Fatalf("%s does not decode strictly: %v", name, err)
	}
	return &v
}

func TestKubernetesMapping(t *testing.T) {
	files, warnings, err := Kubernetes(testFormation(t), testKubernetes)
	if err != nil {
		t.Fatal(err)
	}

	cm := decode[configMap](t, files, "shop-env.configmap.yaml")
	if cm.Data["RAILS_ENV"] != "production" || cm.Metadata.Namespace != "shop" {
		t.Errorf("configmap = %+v", cm)
	}

	web := decode[deployment](t, files, "shop-web.deployment.yaml")
	if *web.Spec.Replicas != 2 || web.Spec.Strategy != nil {
		t.Errorf("web replicas %d strategy %+v", *web.Spec.Replicas, web.Spec.Strategy)
	}
	pod := web.Spec.Template.Spec
	c := pod.Containers[0]
	if c.Image != testKubernetes.Image || !slices.Equal(c.Command, []string{"/bin/sh", "-c", `exec bundle exec puma -p $PORT -C 'config/puma.rb' --tag "100%" --dir \tmp`}) {
		t.Errorf("web container image %q command %q", c.Image, c.Command)
	}
	if c.Env[0].Name != "PORT" || c.Env[0].Value != "8080" || c.Env[1].ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("web env = %+v", c.Env)
	}
	if c.EnvFrom[0].ConfigMapRef.Name != "shop-env" {
		t.Errorf("web envFrom = %+v", c.EnvFrom)
	}
	if m := c.Resources.Limits["memory"]; m != "300Mi" {
		t.Errorf("web memory limit = %s, want 300Mi (memory=300M)", m)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port != portName {
		t.Errorf("web readiness = %+v", p)
	}
	if p := c.StartupProbe; p == nil || p.PeriodSeconds != 1 || p.FailureThreshold != 60 {
		t.Errorf("web startup probe = %+v (ready-timeout=1m)", p)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 8080 || c.Ports[0].Name != portName {
		t.Errorf("web ports = %+v", c.Ports)
	}
	if *pod.TerminationGracePeriodSeconds != 3 {
		t.Errorf("web grace = %d", *pod.TerminationGracePeriodSeconds)
	}

	svc := decode[service](t, files, "shop-web.service.yaml")
	if svc.Spec.SessionAffinity != "ClientIP" || svc.Spec.Ports[0].Port != 4321 ||
		svc.Spec.Ports[0].TargetPort != portName || svc.Spec.Selector[labelComponent] != "web" {
		t.Errorf("web service = %+v", svc.Spec)
	}

	worker := decode[deployment](t, files, "shop-worker.deployment.yaml")
	if *worker.Spec.Replicas != 1 || worker.Spec.Strategy == nil || worker.Spec.Strategy.Type != "Recreate" {
		t.Errorf("singleton worker replicas %d strategy %+v", *worker.Spec.Replicas, worker.Spec.Strategy)
	}
	if wc := worker.Spec.Template.Spec.Containers[0]; wc.ReadinessProbe != nil || len(wc.Ports) != 0 {
		t.Errorf("worker (ready=notify) got a probe or port: %+v", wc)
	}
	if _, ok := files["shop-worker.service.yaml"]; ok {
		t.Error("unbalanced worker got a Service")
	}

	report := decode[cronJob](t, files, "shop-report.cronjob.yaml")
	if report.Spec.Schedule != "30 3 * * mon-fri" || *report.Spec.TimeZone != "Europe/Paris" ||
		report.Spec.ConcurrencyPolicy != "Forbid" || report.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy != "Never" {
		t.Errorf("report cronjob = %+v", report.Spec)
	}

	release := decode[job](t, files, "shop-release.job.yaml")
	if *release.Spec.BackoffLimit != 0 || *release.Spec.Completions != 1 || release.Spec.Suspend != nil {
		t.Errorf("release job = %+v", release.Spec)
	}

	for _, w := range []string{
		"web: watch=app/*.rb not exported", `web: cron-restart="@daily" not exported`, "web: log=log/web.log not exported",
		"web: after=release not exported", "worker: ready=notify not exported", "worker: stop-signal=QUIT not exported",
		"worker: optional not exported",
	} {
		if !slices.ContainsFunc(warnings, func(s string) bool { return strings.HasPrefix(s, w) }) {
			t.Errorf("no warning %q in:\n%s", w, strings.Join(warnings, "\n"))
		}
	}
}

// An exec check gets the whole ready-timeout per try, as in mhrun; a
// tcp:PORT check probes that port; --workdir becomes workingDir; a huge
// ready-timeout is capped, not wrapped.
func TestKubernetesProbes(t *testing.T) {
	f := testFormation(t)
	web := f.Process("web")
	web.Policy.Ready = policy.Ready{Kind: policy.ReadyExec, Command: "curl -fs localhost:$PORT/up"}
	web.Policy.ReadyTimeout = 90 * time.Second
	worker := f.Process("worker")
	worker.Policy.Ready = policy.Ready{Kind: policy.ReadyTCP, Port: 9000}
	worker.Policy.ReadyTimeout = 1000000 * time.Hour
	o := testKubernetes
	o.WorkDir = "/app"
	files, _, err := Kubernetes(f, o)
	if err != nil {
		t.Fatal(err)
	}
	wc := decode[deployment](t, files, "shop-web.deployment.yaml").Spec.Template.Spec.Containers[0]
	if p := wc.ReadinessProbe; p == nil || p.Exec == nil || p.TimeoutSeconds != 90 || p.Exec.Command[2] != "curl -fs localhost:$PORT/up" {
		t.Errorf("web exec readiness = %+v", p)
	}
	if p := wc.StartupProbe; p == nil || p.TimeoutSeconds != 90 || p.FailureThreshold != 90 || p.PeriodSeconds != 1 {
		t.Errorf("web exec startup probe = %+v", p)
	}
	if wc.WorkingDir != "/app" {
		t.Errorf("workingDir = %q", wc.WorkingDir)
	}
	kc := decode[deployment](t, files, "shop-worker.deployment.yaml").Spec.Template.Spec.Containers[0]
	// The port is a number in the YAML, so a float64 once decoded into any.
	if p := kc.ReadinessProbe; p == nil || p.TCPSocket == nil || p.TCPSocket.Port != float64(9000) || p.TimeoutSeconds != 0 {
		t.Errorf("worker tcp readiness = %+v", p)
	}
	if p := kc.StartupProbe; p == nil || p.FailureThreshold != math.MaxInt32 {
		t.Errorf("worker startup probe = %+v, want failureThreshold capped at %d", p, math.MaxInt32)
	}
	if len(kc.Ports) != 0 {
		t.Errorf("worker probing a fixed port declares its PORT: %+v", kc.Ports)
	}
}

func TestKubernetesDefaults(t *testing.T) {
	f := testFormation(t)
	f.FileEnv = nil
	f.Process("web").Scale = 0
	f.Process("report").Scale = 0
	files, warnings, err := Kubernetes(f, KubernetesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["shop-env.configmap.yaml"]; ok {
		t.Error("a ConfigMap without env files")
	}
	web := decode[deployment](t, files, "shop-web.deployment.yaml")
	if *web.Spec.Replicas != 0 || web.Metadata.Namespace != "" || web.Spec.Template.Spec.Containers[0].Image != "shop:latest" ||
		web.Spec.Template.Spec.Containers[0].EnvFrom != nil {
		t.Errorf("web = %+v", web)
	}
	report := decode[cronJob](t, files, "shop-report.cronjob.yaml")
	if report.Spec.Suspend == nil || !*report.Spec.Suspend {
		t.Errorf("scale 0 cronjob not suspended: %+v", report.Spec)
	}
	if !slices.ContainsFunc(warnings, func(s string) bool { return strings.HasPrefix(s, `no --image: the containers run "shop:latest"`) }) {
		t.Errorf("no warning about the image: %q", warnings)
	}
}

func TestKubernetesRefusals(t *testing.T) {
	for _, tt := range []struct {
		name  string
		edit  func(o *KubernetesOptions, f *formation.Formation)
		error string
	}{
		{"app", func(o *KubernetesOptions, _ *formation.Formation) { o.App = "42" }, `app name "42" does not make a Kubernetes name`},
		{"namespace", func(o *KubernetesOptions, _ *formation.Formation) { o.Namespace = "Shop_NS" }, `namespace "Shop_NS" is not a DNS label`},
		{"image", func(o *KubernetesOptions, _ *formation.Formation) { o.Image = "shop 1.4" }, `image "shop 1.4" holds blanks`},
		{"long", func(o *KubernetesOptions, _ *formation.Formation) { o.App = strings.Repeat("a", 50) }, "process report: the Kubernetes name"},
		{"collision", func(_ *KubernetesOptions, f *formation.Formation) {
			f.Process("worker").Name = "Web"
		}, `processes web and Web both become the Kubernetes name "shop-web"`},
		{"schedule", func(_ *KubernetesOptions, f *formation.Formation) {
			f.Process("report").Policy.Schedule = "*/10 * * * * *"
		}, `process report: schedule "*/10 * * * * *" has no CronJob equivalent: seconds field`},
		{"env key", func(_ *KubernetesOptions, f *formation.Formation) { f.FileEnv["A B"] = "1" }, `env file variable "A B" cannot be a ConfigMap key`},
	} {
		f := testFormation(t)
		o := testKubernetes
		tt.edit(&o, f)
		_, _, err := Kubernetes(f, o)
		if err == nil || !strings.Contains(err.Error(), tt.error) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one line with %q", tt.name, err, tt.error)
		}
	}
}

// kubeLiteral doubles every $ of a string the kubelet would change: one
// with $(VAR) or $$. That the kubelet's expansion then gives the string
// back is tested in k8svalidate, which has the kubelet's code.
func TestKubeLiteral(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""}, {"plain", "plain"}, {"$HOME", "$HOME"}, {"${X}", "${X}"}, {"$", "$"}, {"x$", "x$"}, {"100%", "100%"},
		{"$(X)", "$$(X)"}, {"$$", "$$$$"}, {"a$$(b)c", "a$$$$(b)c"}, {"$($(", "$$($$("}, {"$HOME $(X)", "$$HOME $$(X)"},
	} {
		if got := kubeLiteral(tt.in); got != tt.want {
			t.Errorf("kubeLiteral(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCronJobSchedule(t *testing.T) {
	for _, tt := range []struct{ spec, schedule, zone string }{
		{"0 3 * * *", "0 3 * * *", ""},
		{"*/15 9-17 * jan,jul mon-fri", "*/15 9-17 * jan,jul mon-fri", ""},
		{"0 3 1 * mon", "0 3 1 * mon", ""}, // Kubernetes ORs the day fields as mhrun does
		{"0 30 3 * * *", "30 3 * * *", ""},
		{"@daily", "@daily", ""},
		{"@every 90m", "@every 1h30m", ""},
		{"@every 2h", "@every 2h", ""},
		{"CRON_TZ=Europe/Paris 0 3 * * *", "0 3 * * *", "Europe/Paris"},
		{"TZ=UTC @hourly", "@hourly", "UTC"},
	} {
		s, z, err := CronJobSchedule(tt.spec)
		if err != nil || s != tt.schedule || z != tt.zone {
			t.Errorf("CronJobSchedule(%q) = %q, %q, %v; want %q, %q", tt.spec, s, z, err, tt.schedule, tt.zone)
		}
	}
	for _, spec := range []string{"*/10 * * * * *", "30 0 3 * * *", "@every 90s", "@every -1m", "@reboot", "1 2 3", "CRON_TZ=Nowhere/X 0 3 * * *", "CRON_TZ=Local 0 3 * * *"} {
		if _, _, err := CronJobSchedule(spec); err == nil || !strings.Contains(err.Error(), spec) || !strings.Contains(err.Error(), "CronJobs take") {
			t.Errorf("CronJobSchedule(%q) err = %v, want a refusal naming it and what works", spec, err)
		}
	}
}

// FuzzCronJobSchedule: whatever the policy accepts and the conversion
// keeps is a schedule Kubernetes' parser (robfig/cron's standard parser)
// accepts, firing at the same times as mhrun would.
func FuzzCronJobSchedule(f *testing.F) {
	for _, s := range []string{"0 3 * * *", "0 30 3 * * *", "@every 5m", "CRON_TZ=UTC 0 3 * * mon", "@weekly", "0 0 1 jan,jul *", "CRON_TZ=Local 0 3 * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		want, err := policy.ParseSchedule(spec)
		if err != nil {
			return
		}
		schedule, zone, err := CronJobSchedule(spec)
		if err != nil {
			return
		}
		got, err := cron.ParseStandard(schedule)
		if err != nil {
			t.Fatalf("%q became %q, which Kubernetes refuses: %v", spec, schedule, err)
		}
		loc := time.UTC
		if zone != "" {
			if loc, err = time.LoadLocation(zone); err != nil {
				t.Fatalf("%q gave zone %q: %v", spec, zone, err)
			}
		}
		a := time.Date(2026, 11, 25, 23, 58, 0, 0, loc)
		b := a
		for range 5 {
			a, b = want.Next(a), got.Next(b)
			if !a.Equal(b) {
				t.Fatalf("%q fires at %v in mhrun, %q at %v in Kubernetes", spec, a, schedule, b)
			}
		}
	})
}
