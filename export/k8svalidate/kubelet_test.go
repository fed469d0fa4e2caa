package k8svalidate

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"

	"mhrun/export"
	"mhrun/formation"
	"mhrun/procfile"
)

// kubeletEnv is the environment the kubelet makes for container c: the
// ConfigMap's variables (envFrom), then each env entry in order, its
// value expanded as the kubelet does ($(VAR) of the variables before it,
// $$ to $), overriding.
func kubeletEnv(c corev1.Container, configMap map[string]string) map[string]string {
	env := map[string]string{}
	for k, v := range configMap {
		env[k] = v
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			env[e.Name] = "(from " + e.ValueFrom.FieldRef.FieldPath + ")"
			continue
		}
		env[e.Name] = expansion.Expand(e.Value, expansion.MappingFuncFor(env))
	}
	return env
}

// Issue 14: the policy's env.NAME variables are the container's env after
// PORT and PS, win over the env files' ConfigMap, and reach the container
// as written: the kubelet's $(VAR) expansion and $$ reduction undone.
func TestKubernetesProcessEnv(t *testing.T) {
	f := testFormation(t)
	f.Process("web").Policy.Env["RAILS_ENV"] = "staging $(RAILS_ENV)"
	files, _, err := export.Kubernetes(f, testKubernetes)
	if err != nil {
		t.Fatal(err)
	}
	s := kubeScheme(t)
	web := decodeStrict(t, s, "shop-web.deployment.yaml", files["shop-web.deployment.yaml"]).(*appsv1.Deployment)
	c := web.Spec.Template.Spec.Containers[0]
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
	}
	if want := []string{"PORT", "PS", "GREETING", "HOST", "RAILS_ENV"}; !slices.Equal(names, want) {
		t.Errorf("web env names %q, want %q", names, want)
	}
	cm := decodeStrict(t, s, "shop-env.configmap.yaml", files["shop-env.configmap.yaml"]).(*corev1.ConfigMap)
	env := kubeletEnv(c, cm.Data)
	for name, want := range f.Process("web").Policy.Env {
		if env[name] != want {
			t.Errorf("web container sees %s=%q, want %q as the policy writes it", name, env[name], want)
		}
	}
	worker := decodeStrict(t, s, "shop-worker.deployment.yaml", files["shop-worker.deployment.yaml"]).(*appsv1.Deployment)
	if n := len(worker.Spec.Template.Spec.Containers[0].Env); n != 2 {
		t.Errorf("worker, without env.NAME, has %d env entries, want PORT and PS", n)
	}
}

// Whatever the value, the kubelet's expansion gives the container an
// env.NAME variable as the policy writes it (export's kubeLiteral, through
// the exported API). X and b, which the values name, come before the
// v_ variables (env is in name order), so an expansion would show.
func TestKubernetesEnvAsWritten(t *testing.T) {
	values := []string{"", "plain", "$HOME", "${X}", "$(X)", "$$", "a$$(b)c", "$", "x$", "$($(", "100%"}
	f := testFormation(t)
	web := f.Process("web")
	web.Policy.Env = map[string]string{"X": "expanded", "b": "B"}
	for i, v := range values {
		web.Policy.Env["v_"+string(rune('a'+i))] = v
	}
	files, _, err := export.Kubernetes(f, testKubernetes)
	if err != nil {
		t.Fatal(err)
	}
	d := decodeStrict(t, kubeScheme(t), "shop-web.deployment.yaml", files["shop-web.deployment.yaml"]).(*appsv1.Deployment)
	env := kubeletEnv(d.Spec.Template.Spec.Containers[0], nil)
	for i, v := range values {
		if got := env["v_"+string(rune('a'+i))]; got != v {
			t.Errorf("env value %q reaches the container as %q", v, got)
		}
	}
}

// Regression: the kubelet expands $(VAR) and reduces $$ to $ in a
// container's command, so `kill -TERM $$` lost its pid and a $(PORT)
// command substitution became the port; the command is the shell's as
// written.
func TestKubernetesCommandAsWritten(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	pf := "web: echo $$ $(PORT) \"$(date)\" && exec ./web\nplain: ./worker $HOME\n"
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte(pf), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := formation.Load(formation.Options{Dir: dir, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	files, _, err := export.Kubernetes(f, testKubernetes)
	if err != nil {
		t.Fatal(err)
	}
	s := kubeScheme(t)
	for _, name := range []string{"web", "plain"} {
		d := decodeStrict(t, s, "shop-"+name+".deployment.yaml", files["shop-"+name+".deployment.yaml"]).(*appsv1.Deployment)
		c := d.Spec.Template.Spec.Containers[0]
		env := kubeletEnv(c, nil)
		var got []string
		for _, arg := range c.Command {
			got = append(got, expansion.Expand(arg, expansion.MappingFuncFor(env)))
		}
		if want := []string{"/bin/sh", "-c", procfile.ShellCommand(f.Process(name).Command)}; !slices.Equal(got, want) {
			t.Errorf("%s runs %q in its container, want %q", name, got, want)
		}
	}
}
