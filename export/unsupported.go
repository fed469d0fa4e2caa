package export

// What each engine cannot express of a policy, in one table. Each row is a
// policy key, or one use of it, that one engine has no equivalent for, and
// why. Both exporters take their "not exported" warnings from it:
//
//	PROCESS: SETTING not exported: WHY
//
// Systemd also writes each as a "# mhrun: SETTING not exported: WHY"
// comment at the top of the process's unit, in the table's order.
// SETTING is the key as a policy line spells it (ready=http:/healthz,
// sticky). In WHY, {unit} is the process's unit name prefix (APP-NAME),
// {kind} the Kubernetes kind of its object and {signal} its stop signal.
//
// Not here, because they are not a key left out: Kubernetes' warnings
// about scale=max (written as that many replicas), a missing --image and
// sticky keyed on a header or cookie (a Service keys on the client IP
// only), and systemd's comments about backoff growth before systemd 254
// and a singleton's one instance.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"mhrun/policy"
)

// engine is an exporter, as a column of the table.
type engine int

const (
	engineSystemd engine = iota
	engineKubernetes
)

// gap is one row: what of a policy engine cannot express.
type gap struct {
	engine engine
	key    string // the policy key
	// uses says whether pol uses the key in the way engine cannot
	// express; kind is the Kubernetes object kind, "" for systemd.
	uses func(pol policy.Policy, kind string) bool
	why  string
}

// unsupported is the table. Systemd's rows keep the order of the comments
// in its units.
var unsupported = []gap{
	{engineSystemd, "ready", readyIs(policy.ReadyTCP, policy.ReadyHTTP, policy.ReadyLog, policy.ReadyExec),
		"systemd only knows readiness by sd_notify (ready=notify); dependents start once it runs"},
	{engineKubernetes, "ready", readyIs(policy.ReadyLog, policy.ReadyNotify),
		"Kubernetes probes are tcp, http or exec; the pod is ready once it runs"},
	{engineKubernetes, "ready", func(pol policy.Policy, kind string) bool {
		return kind != kindDeployment && readyIs(policy.ReadyTCP, policy.ReadyHTTP, policy.ReadyExec)(pol, kind)
	}, "a {kind} has no readiness to wait for"},

	{engineSystemd, "balance", func(pol policy.Policy, _ string) bool { return pol.Balance != 0 },
		"systemd has no load balancer; put a proxy in front of the instances' ports"},
	{engineKubernetes, "balance", func(pol policy.Policy, kind string) bool { return pol.Balance != 0 && kind != kindDeployment },
		"a {kind} gets no Service"},

	{engineKubernetes, "socket", func(pol policy.Policy, kind string) bool { return pol.Socket != 0 && kind != kindDeployment },
		"a {kind} gets no Service"},

	{engineSystemd, "sticky", func(pol policy.Policy, _ string) bool { return pol.Sticky },
		"goes with balance, which systemd lacks"},

	{engineSystemd, "watch", func(pol policy.Policy, _ string) bool { return len(pol.Watch) > 0 },
		"systemd does not restart on file changes (a .path unit could)"},
	{engineKubernetes, "watch", func(pol policy.Policy, _ string) bool { return len(pol.Watch) > 0 },
		"Kubernetes does not restart on file changes; roll out a new image instead"},

	{engineSystemd, "cron-restart", func(pol policy.Policy, _ string) bool { return pol.CronRestart != "" },
		"systemd has no timed restart of a running service"},
	{engineKubernetes, "cron-restart", func(pol policy.Policy, _ string) bool { return pol.CronRestart != "" },
		"Kubernetes has no timed restart; a CronJob running kubectl rollout restart could"},

	{engineSystemd, "optional", func(pol policy.Policy, _ string) bool { return pol.Optional },
		"each unit fails on its own in systemd; nothing is taken down with it"},
	{engineKubernetes, "optional", func(pol policy.Policy, _ string) bool { return pol.Optional },
		"each object fails on its own in Kubernetes; nothing is taken down with it"},

	{engineSystemd, "log", func(pol policy.Policy, _ string) bool { return pol.Log != "" },
		"output goes to the journal (journalctl -u {unit}*)"},
	{engineKubernetes, "log", func(pol policy.Policy, _ string) bool { return pol.Log != "" },
		"output goes to the container log (kubectl logs)"},

	{engineKubernetes, "after", func(pol policy.Policy, _ string) bool { return len(pol.After) > 0 },
		"Kubernetes starts every object at once; the process must wait for or retry what it needs"},
	{engineKubernetes, "stop-signal", func(pol policy.Policy, _ string) bool { return pol.StopSignal != "TERM" },
		"pods get SIGTERM (Kubernetes' stopSignal field is alpha and off by default); add STOPSIGNAL SIG{signal} to the image"},
	{engineKubernetes, "backoff", changedIn(kindDeployment, "backoff"), kubeletBackoff},
	{engineKubernetes, "stable", changedIn(kindDeployment, "stable"), kubeletBackoff},
	{engineKubernetes, "max-restarts", changedIn(kindDeployment, "max-restarts"), kubeletBackoff},
}

const kubeletBackoff = "the kubelet restarts a container with its own back-off (10s doubling to 5m) and never gives up"

// notExported lists what engine cannot express of pol, as
// "SETTING not exported: WHY" in the table's order; unit and kind fill
// in {unit} and {kind}.
func notExported(e engine, pol policy.Policy, unit, kind string) []string {
	fill := strings.NewReplacer("{unit}", unit, "{kind}", kind, "{signal}", pol.StopSignal)
	var notes []string
	for _, g := range unsupported {
		if g.engine == e && g.uses(pol, kind) {
			notes = append(notes, setting(pol, g.key)+" not exported: "+fill.Replace(g.why))
		}
	}
	return notes
}

// formatSocketKey is socket='s value: PORT or HOST:PORT.
func formatSocketKey(pol policy.Policy) string {
	for _, kv := range pol.Fields() {
		if kv.Key == "socket" {
			return kv.Value
		}
	}
	return ""
}

// setting is key as pol sets it, the way a warning names it.
func setting(pol policy.Policy, key string) string {
	switch key {
	case "ready":
		return "ready=" + pol.Ready.String()
	case "balance":
		return "balance=" + strconv.Itoa(pol.Balance)
	case "socket":
		return "socket=" + formatSocketKey(pol)
	case "sticky", "optional":
		return key
	case "watch":
		return "watch=" + strings.Join(pol.Watch, ",")
	case "cron-restart":
		return fmt.Sprintf("cron-restart=%q", pol.CronRestart)
	case "log":
		return "log=" + pol.Log
	case "after":
		return "after=" + strings.Join(pol.After, ",")
	case "stop-signal":
		return "stop-signal=" + pol.StopSignal
	}
	v, _ := policyField(pol, key)
	return key + "=" + v
}

// readyIs is a gap's uses for a ready= of one of kinds.
func readyIs(kinds ...policy.ReadyKind) func(policy.Policy, string) bool {
	return func(pol policy.Policy, _ string) bool { return slices.Contains(kinds, pol.Ready.Kind) }
}

// changedIn is a gap's uses for key set to other than its default, in an
// object of kind.
func changedIn(kind, key string) func(policy.Policy, string) bool {
	return func(pol policy.Policy, k string) bool {
		v, def := policyField(pol, key)
		return k == kind && v != def
	}
}

// policyField is the value of key in pol and in the default policy, as
// policy.Fields writes them.
func policyField(pol policy.Policy, key string) (value, def string) {
	defaults := policy.Default().Fields()
	for i, kv := range pol.Fields() {
		if kv.Key == key {
			return kv.Value, defaults[i].Value
		}
	}
	return "", ""
}
