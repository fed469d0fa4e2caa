package export

// Kubernetes layout, one object per file, each named NAME.KIND.yaml:
//
//   - APP-env.configmap.yaml: the env files' variables (when there are any),
//     which every container takes with envFrom.
//   - APP-NAME.deployment.yaml for each long-running process: replicas =
//     scale; a singleton has at most one replica and the Recreate strategy,
//     so two never overlap in a rollout.
//   - APP-NAME.service.yaml for each balanced process: port = balance=,
//     targetPort = the process's PORT, sticky → sessionAffinity: ClientIP;
//     and for each socket= process: port = PORT = the socket's port (the
//     Service spreads connections over the pods as the kernel spreads
//     them over the instances under mhrun; a pod inherits no socket).
//   - APP-NAME.cronjob.yaml for each scheduled process (concurrencyPolicy
//     Forbid, as mhrun skips a tick while the last run goes on; CRON_TZ
//     becomes timeZone).
//   - APP-NAME.job.yaml for each restart=never process: it runs once.
//
// A container runs /bin/sh -c with the command as mhrun runs it, has PORT
// set to the first instance's port (each pod has its own address, so all
// replicas share it), PS set to the pod's name, and the policy's
// env.NAME variables (in env, which wins over envFrom; $ escaped, since
// the kubelet expands $(VAR) there and in the command). Readiness (tcp, http,
// exec) becomes a readinessProbe plus a startupProbe that gives up after
// ready-timeout, as mhrun fails a start that is not ready in time.

import (
	"cmp"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"mhrun/formation"
	"mhrun/policy"
	"mhrun/procfile"
)

// KubernetesOptions say how the manifests are written; zero values are the defaults.
type KubernetesOptions struct {
	App       string // name prefix of every object; "" = base name of the project dir
	Image     string // the containers' image; "" = APP:latest, with a warning
	Namespace string // metadata.namespace of every object; "" = none (kubectl's current one)
	WorkDir   string // workingDir of the containers; "" = the image's WORKDIR
}

// Label keys of every object; the selector of a process is name+component.
const (
	labelName      = "app.kubernetes.io/name"
	labelComponent = "app.kubernetes.io/component"
	labelManagedBy = "app.kubernetes.io/managed-by"
)

// portName names the container port that PORT is, for probes and Services.
const portName = "app"

// The kinds of object a process becomes.
const (
	kindDeployment = "Deployment"
	kindCronJob    = "CronJob"
	kindJob        = "Job"
)

// Kubernetes returns the manifests of f keyed by file name, and a warning
// for each policy key it could not express.
func Kubernetes(f *formation.Formation, o KubernetesOptions) (files map[string][]byte, warnings []string, err error) {
	x, err := newKubeExport(f, o)
	if err != nil {
		return nil, nil, err
	}
	if err := x.configMap(); err != nil {
		return nil, nil, err
	}
	for _, p := range f.Processes {
		if err := x.process(p); err != nil {
			return nil, nil, err
		}
	}
	slices.Sort(x.warnings)
	return x.files, x.warnings, nil
}

// kubeExport is one export under way: what every object shares, and the
// files and warnings written so far.
type kubeExport struct {
	f        *formation.Formation
	o        KubernetesOptions
	app      string            // name prefix and app.kubernetes.io/name
	shared   container         // what every container shares: image, workingDir, envFrom
	seen     map[string]string // object name → the process that has it
	files    map[string][]byte
	warnings []string
}

// newKubeExport resolves and checks o's defaults for f.
func newKubeExport(f *formation.Formation, o KubernetesOptions) (*kubeExport, error) {
	appSrc := cmp.Or(o.App, filepath.Base(f.Dir))
	app := dnsLabel(appSrc)
	if app == "" || app[0] < 'a' || app[0] > 'z' {
		return nil, fmt.Errorf("app name %q does not make a Kubernetes name: it needs a letter first, then letters, digits or -; pass --app", appSrc)
	}
	if o.Namespace != "" {
		if len(o.Namespace) > 63 || !dnsLabelRE.MatchString(o.Namespace) {
			return nil, fmt.Errorf("namespace %q is not a DNS label: 1-63 lowercase letters, digits or -, starting and ending with a letter or digit", o.Namespace)
		}
	}
	x := &kubeExport{f: f, o: o, app: app, seen: map[string]string{}, files: map[string][]byte{}}
	image := o.Image
	if image == "" {
		image = app + ":latest"
		x.warnings = append(x.warnings, fmt.Sprintf("no --image: the containers run %q; pass --image with the image that holds this project", image))
	}
	if strings.TrimSpace(image) != image || strings.ContainsAny(image, " \t\n") {
		return nil, fmt.Errorf("image %q holds blanks (pass an image reference such as registry.example.com/shop:1.4)", image)
	}
	x.shared = container{Image: image, WorkingDir: o.WorkDir}
	return x, nil
}

// put writes obj, a name of kind, as NAME.KIND.yaml.
func (x *kubeExport) put(name, kind string, obj any) error {
	b, err := manifest(obj, x.app)
	if err != nil {
		return fmt.Errorf("write %s %s: %w", kind, name, err)
	}
	x.files[name+"."+strings.ToLower(kind)+".yaml"] = b
	return nil
}

// meta is the metadata of an object: its name, the namespace and the
// labels; component "" is none.
func (x *kubeExport) meta(name, component string) objectMeta {
	labels := map[string]string{labelName: x.app, labelManagedBy: "mhrun"}
	if component != "" {
		labels[labelComponent] = component
	}
	return objectMeta{Name: name, Namespace: x.o.Namespace, Labels: labels}
}

// configMap writes APP-env, the env files' variables, when there are any,
// and has every container take it with envFrom.
func (x *kubeExport) configMap() error {
	if len(x.f.FileEnv) == 0 {
		return nil
	}
	name := x.app + "-env"
	data := map[string]string{}
	for k, v := range x.f.FileEnv {
		if len(k) > 253 || !configMapKeyRE.MatchString(k) || k == "." || k == ".." {
			return fmt.Errorf("env file variable %q cannot be a ConfigMap key: use letters, digits, -, _ and . only", k)
		}
		data[k] = v
	}
	x.shared.EnvFrom = []envFromSource{{ConfigMapRef: &localObjectReference{Name: name}}}
	cm := &configMap{typeMeta: typeMeta{"v1", "ConfigMap"}, Metadata: x.meta(name, ""), Data: data}
	return x.put(name, "ConfigMap", cm)
}

// kubeProcess is what the objects of one process share.
type kubeProcess struct {
	p         *formation.Process
	name      string            // of every object: APP-NAME
	component string            // NAME as a DNS label
	selector  map[string]string // the labels of its pods
	pod       podTemplateSpec
	replicas  int32
}

// process writes the objects of p: a Deployment and, when it is balanced,
// a Service; or a CronJob; or a Job.
func (x *kubeExport) process(p *formation.Process) error {
	name, component, err := x.objectName(p)
	if err != nil {
		return err
	}
	kind := kubeKind(p.Policy)
	x.warnings = append(x.warnings, kubeWarnings(p, kind)...)
	k := &kubeProcess{p: p, name: name, component: component,
		selector: map[string]string{labelName: x.app, labelComponent: component}}
	port := p.Port(x.f.BasePort, 1)
	if p.Policy.Socket != 0 {
		port = p.Policy.Socket // PORT is the socket's port under mhrun too
	}
	c := kubeContainer(p, kind, component, port, x.shared)
	k.pod = podTemplateSpec{
		Metadata: objectMeta{Labels: k.selector},
		Spec: podSpec{
			Containers:                    []container{c},
			TerminationGracePeriodSeconds: ptr(int64(ceilSeconds(p.Policy.Grace))),
		},
	}
	k.replicas = int32(p.Scale)
	if p.Policy.Singleton {
		k.replicas = min(k.replicas, 1)
	}
	switch kind {
	case kindCronJob:
		return x.cronJob(k)
	case kindJob:
		return x.job(k)
	}
	if err := x.deployment(k); err != nil || (p.Policy.Balance == 0 && p.Policy.Socket == 0) {
		return err
	}
	return x.service(k)
}

// objectName is the name of p's objects, APP-NAME, and NAME as a label;
// two processes cannot have one name, nor a name Kubernetes refuses.
func (x *kubeExport) objectName(p *formation.Process) (name, component string, err error) {
	component = dnsLabel(p.Name)
	name = x.app + "-" + component
	if other, ok := x.seen[name]; ok {
		return "", "", fmt.Errorf("processes %s and %s both become the Kubernetes name %q (rename one in the Procfile)", other, p.Name, name)
	}
	x.seen[name] = p.Name
	limit := 63
	if p.Policy.Schedule != "" {
		limit = 52 // a CronJob's name gets an 11-character suffix per Job
	}
	if component == "" || len(name) > limit {
		return "", "", fmt.Errorf("process %s: the Kubernetes name %q is not 1-%d characters of letters, digits and - (pass a shorter --app)", p.Name, name, limit)
	}
	return name, component, nil
}

// deployment writes the Deployment of a long-running process; a singleton
// has the Recreate strategy, so that two never overlap in a rollout.
func (x *kubeExport) deployment(k *kubeProcess) error {
	d := &deployment{
		typeMeta: typeMeta{"apps/v1", kindDeployment},
		Metadata: x.meta(k.name, k.component),
		Spec:     deploymentSpec{Replicas: &k.replicas, Selector: labelSelector{MatchLabels: k.selector}, Template: k.pod},
	}
	if k.p.Policy.Singleton {
		d.Spec.Strategy = &deploymentStrategy{Type: "Recreate"}
	}
	return x.put(k.name, kindDeployment, d)
}

// service writes the Service of a balanced process: its balance= port to
// the pods' PORT, sticky by client IP; or of a socket= process: the
// socket's port, which is the pods' PORT.
func (x *kubeExport) service(k *kubeProcess) error {
	pol := k.p.Policy
	svc := &service{
		typeMeta: typeMeta{"v1", "Service"},
		Metadata: x.meta(k.name, k.component),
		Spec: serviceSpec{
			Selector: k.selector,
			Ports:    []servicePort{{Name: portName, Protocol: "TCP", Port: int32(cmp.Or(pol.Balance, pol.Socket)), TargetPort: portName}},
		},
	}
	if pol.Sticky {
		svc.Spec.SessionAffinity = "ClientIP"
		if pol.StickyKey != "" {
			x.warnings = append(x.warnings, fmt.Sprintf("%s: sticky=%s: a Service's sessionAffinity keys on the client IP only; put an ingress with cookie or header affinity in front for that", k.name, pol.StickyKey))
		}
	}
	if pol.Socket != 0 {
		x.warnings = append(x.warnings, fmt.Sprintf("%s: socket=%s became a Service on port %d, which spreads connections over the pods; a pod inherits no socket (no fd 3, no LISTEN_FDS), so the program must listen on $PORT itself when LISTEN_FDS is unset", k.p.Name, formatSocketKey(pol), pol.Socket))
	}
	return x.put(k.name, "Service", svc)
}

// cronJob writes the CronJob of a scheduled process.
func (x *kubeExport) cronJob(k *kubeProcess) error {
	schedule, zone, err := CronJobSchedule(k.p.Policy.Schedule)
	if err != nil {
		return fmt.Errorf("process %s: %w", k.p.Name, err)
	}
	pod := k.pod
	pod.Spec.RestartPolicy = "Never"
	cj := &cronJob{
		typeMeta: typeMeta{"batch/v1", kindCronJob},
		Metadata: x.meta(k.name, k.component),
		Spec: cronJobSpec{
			Schedule:          schedule,
			ConcurrencyPolicy: "Forbid",
			Suspend:           suspended(k.replicas),
			JobTemplate:       jobTemplateSpec{Metadata: objectMeta{Labels: k.selector}, Spec: runOnce(pod, k.replicas)},
		},
	}
	if zone != "" {
		cj.Spec.TimeZone = &zone
	}
	return x.put(k.name, kindCronJob, cj)
}

// job writes the Job of a restart=never process: it runs once.
func (x *kubeExport) job(k *kubeProcess) error {
	pod := k.pod
	pod.Spec.RestartPolicy = "Never"
	j := &job{typeMeta: typeMeta{"batch/v1", kindJob}, Metadata: x.meta(k.name, k.component), Spec: runOnce(pod, k.replicas)}
	j.Spec.Suspend = suspended(k.replicas)
	return x.put(k.name, kindJob, j)
}

// kubeContainer is the container name of process p, given what every
// container shares (image, workingDir, envFrom): its command, PORT (port)
// and PS, its memory limit, and for a Deployment its port and probes.
func kubeContainer(p *formation.Process, kind, name string, port int, shared container) container {
	pol := p.Policy
	c := shared
	c.Name = name
	c.Command = []string{"/bin/sh", "-c", kubeLiteral(procfile.ShellCommand(p.Command))}
	c.Env = []envVar{
		{Name: "PORT", Value: strconv.Itoa(port)},
		{Name: "PS", ValueFrom: &envVarSource{FieldRef: &objectFieldSelector{FieldPath: "metadata.name"}}},
	}
	// env.NAME: after envFrom, which an env entry overrides, as the
	// policy's variables win over the env files under mhrun.
	for _, kv := range pol.EnvVars() {
		c.Env = append(c.Env, envVar{Name: kv.Key, Value: kubeLiteral(kv.Value)})
	}
	if pol.Memory > 0 {
		c.Resources.Limits = map[string]string{"memory": quantity(pol.Memory)}
	}
	usesPort := pol.Balance != 0 || pol.Socket != 0 || (pol.Ready.Kind == policy.ReadyTCP && pol.Ready.Port == 0) || pol.Ready.Kind == policy.ReadyHTTP
	if kind == kindDeployment {
		if usesPort {
			c.Ports = []containerPort{{Name: portName, ContainerPort: int32(port), Protocol: "TCP"}}
		}
		if h := readyProbe(pol.Ready); h != nil {
			timeout := int32(min(max(1, ceilSeconds(pol.ReadyTimeout)), math.MaxInt32))
			if h.Exec != nil {
				// mhrun gives an exec check the whole ready-timeout,
				// the kubelet 1s a try unless told.
				h.TimeoutSeconds = timeout
			}
			c.ReadinessProbe = h
			startup := *h
			startup.PeriodSeconds = 1
			startup.FailureThreshold = timeout
			c.StartupProbe = &startup
		}
	}
	return c
}

// kubeLiteral escapes s for a container's command, args or env value,
// where the kubelet expands $(VAR) and reduces $$ to $: it doubles every
// $ of a string that has either, so that the container sees s as written.
func kubeLiteral(s string) string {
	if !strings.Contains(s, "$(") && !strings.Contains(s, "$$") {
		return s
	}
	return strings.ReplaceAll(s, "$", "$$")
}

// kubeKind is the kind of object a process becomes.
func kubeKind(pol policy.Policy) string {
	switch {
	case pol.Schedule != "":
		return kindCronJob
	case pol.Restart == policy.RestartNever:
		return kindJob
	}
	return kindDeployment
}

// kubeWarnings lists what of p's policy a kind of object cannot express
// (the table in unsupported.go), and what scale=max became.
func kubeWarnings(p *formation.Process, kind string) (w []string) {
	for _, n := range notExported(engineKubernetes, p.Policy, "", kind) {
		w = append(w, p.Name+": "+n)
	}
	if p.Policy.Scale == policy.ScaleMax {
		w = append(w, fmt.Sprintf("%s: scale=max became %d replicas, this machine's CPU count; a HorizontalPodAutoscaler may suit better", p.Name, p.Scale))
	}
	return w
}

// runOnce runs replicas pods of pod once each; a failed pod is not retried,
// as mhrun shows a failed job and waits for the next tick.
func runOnce(pod podTemplateSpec, replicas int32) jobSpec {
	n := max(replicas, 1)
	return jobSpec{
		Parallelism:  &n,
		Completions:  &n,
		BackoffLimit: ptr(int32(0)),
		Template:     pod,
	}
}

// suspended is true for scale 0, which in mhrun means "never run".
func suspended(replicas int32) *bool {
	if replicas == 0 {
		return ptr(true)
	}
	return nil
}

// readyProbe is the probe of a ready= check, or nil where a probe cannot
// express it (log, notify) or there is none.
func readyProbe(r policy.Ready) *probe {
	switch r.Kind {
	case policy.ReadyTCP:
		var port any = portName
		if r.Port != 0 {
			port = int32(r.Port)
		}
		return &probe{TCPSocket: &tcpSocketAction{Port: port}}
	case policy.ReadyHTTP:
		return &probe{HTTPGet: &httpGetAction{Path: r.Path, Port: portName}}
	case policy.ReadyExec:
		return &probe{Exec: &execAction{Command: []string{"/bin/sh", "-c", r.Command}}}
	}
	return nil
}

// quantity is n bytes as Kubernetes writes a binary quantity: with the
// largest suffix Ki, Mi, Gi, Ti, Pi or Ei that divides it exactly.
func quantity(n int64) string {
	suffix := ""
	for _, s := range []string{"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"} {
		if n == 0 || n%1024 != 0 {
			break
		}
		n /= 1024
		suffix = s
	}
	return strconv.FormatInt(n, 10) + suffix
}

var (
	dnsLabelRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	configMapKeyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

// CronJobSchedule converts a schedule= spec into a CronJob's schedule and
// time zone. Kubernetes reads schedules with the same cron library as mhrun
// (robfig/cron, standard five fields and descriptors, @every included) but
// at minute resolution and with the zone in its own field: a seconds field
// other than 0 is an error, and CRON_TZ=/TZ= becomes timeZone.
func CronJobSchedule(spec string) (schedule, zone string, err error) {
	fail := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("schedule %q has no CronJob equivalent: %s (CronJobs take 5 fields, or 6 with 0 seconds, "+
			"descriptors such as @daily or @every D in whole minutes, and a CRON_TZ= prefix)", spec, why)
	}
	zone, s, err := splitZone(spec)
	if err != nil {
		return fail(err.Error())
	}
	if rest, ok := strings.CutPrefix(s, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil || d <= 0 {
			return fail("@every wants a positive duration like 5m")
		}
		if d%time.Minute != 0 {
			return fail("@every " + d.String() + " is not whole minutes")
		}
		every := ""
		if h := d / time.Hour; h > 0 {
			every = strconv.FormatInt(int64(h), 10) + "h"
		}
		if m := d % time.Hour / time.Minute; m > 0 {
			every += strconv.FormatInt(int64(m), 10) + "m"
		}
		return "@every " + every, zone, nil
	}
	if strings.HasPrefix(s, "@") {
		switch s {
		case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly":
			return s, zone, nil
		}
		return fail("unknown descriptor " + s)
	}
	fields := strings.Fields(s)
	switch len(fields) {
	case 5:
	case 6:
		if fields[0] != "0" && fields[0] != "00" {
			return fail("seconds field " + strconv.Quote(fields[0]) + ": CronJobs run at minute resolution")
		}
		fields = fields[1:]
	default:
		return fail(fmt.Sprintf("%d fields", len(fields)))
	}
	return strings.Join(fields, " "), zone, nil
}

// manifest is obj as YAML under a header naming the app.
func manifest(obj any, app string) ([]byte, error) {
	y, err := yaml.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Generated by mhrun export kubernetes for "+app+".\n"), y...), nil
}

// dnsLabel lowercases s and replaces what a DNS label cannot hold with "-".
func dnsLabel(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// ceilSeconds is d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}

func ptr[T any](v T) *T { return &v }
