package k8svalidate

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	"k8s.io/kubernetes/pkg/apis/apps"
	_ "k8s.io/kubernetes/pkg/apis/apps/install"
	appsvalidation "k8s.io/kubernetes/pkg/apis/apps/validation"
	"k8s.io/kubernetes/pkg/apis/batch"
	_ "k8s.io/kubernetes/pkg/apis/batch/install"
	batchvalidation "k8s.io/kubernetes/pkg/apis/batch/validation"
	"k8s.io/kubernetes/pkg/apis/core"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	corevalidation "k8s.io/kubernetes/pkg/apis/core/validation"

	"mhrun/export"
	"mhrun/formation"
)

// apiValidate runs the Kubernetes API server's own validation of a new
// object on obj: the v1 defaults are applied and the object converted to
// the internal version, as the server does before it validates a create.
func apiValidate(t *testing.T, obj runtime.Object) field.ErrorList {
	t.Helper()
	s := legacyscheme.Scheme
	s.Default(obj)
	gvk := obj.GetObjectKind().GroupVersionKind()
	internal, err := s.New(gvk.GroupKind().WithVersion(runtime.APIVersionInternal))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Convert(obj, internal, nil); err != nil {
		t.Fatalf("convert %s: %v", gvk.Kind, err)
	}
	// kubectl sends an object without a namespace to its current one.
	if m := internal.(metav1.Object); m.GetNamespace() == "" {
		m.SetNamespace("default")
	}
	opts := corevalidation.PodValidationOptions{}
	switch o := internal.(type) {
	case *apps.Deployment:
		return appsvalidation.ValidateDeployment(o, opts)
	case *batch.CronJob:
		return batchvalidation.ValidateCronJobCreate(o, opts)
	case *batch.Job:
		// What the server's job strategy does before it validates a
		// create: a uid, and the selector and pod labels derived from it.
		o.UID = "0ee1a4c2-7c1f-4b39-9e35-6f2f0c3e1a11"
		o.Spec.ManualSelector = new(bool)
		ids := map[string]string{batch.LegacyJobNameLabel: o.Name, batch.JobNameLabel: o.Name,
			batch.LegacyControllerUidLabel: string(o.UID), batch.ControllerUidLabel: string(o.UID)}
		for k, v := range ids {
			o.Spec.Template.Labels[k] = v
		}
		o.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{batch.ControllerUidLabel: string(o.UID)}}
		return batchvalidation.ValidateJobCreate(o, batchvalidation.JobValidationOptions{PodValidationOptions: opts, RequirePrefixedLabels: true})
	case *core.Service:
		return corevalidation.ValidateServiceCreate(o)
	case *core.ConfigMap:
		return corevalidation.ValidateConfigMap(o)
	}
	t.Fatalf("no validation for %T", internal)
	return nil
}

// TestKubernetesAPIValidation passes every exported object through the
// validation the API server runs on a create (k8s.io/kubernetes, offline).
func TestKubernetesAPIValidation(t *testing.T) {
	s := kubeScheme(t)
	for _, o := range []export.KubernetesOptions{testKubernetes, {}} {
		files, _, err := export.Kubernetes(testFormation(t), o)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range keys(files) {
			obj := decodeStrict(t, s, name, files[name])
			if errs := apiValidate(t, obj); len(errs) > 0 {
				t.Errorf("%s fails the API's validation: %v\n%s", name, errs.ToAggregate(), files[name])
			}
		}
	}

	// The validation has teeth: a broken object is refused.
	files, _, err := export.Kubernetes(testFormation(t), testKubernetes)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(files["shop-report.cronjob.yaml"]), "schedule: 30 3 * * mon-fri", "schedule: 61 3 * * *", 1)
	if errs := apiValidate(t, decodeStrict(t, s, "shop-report.cronjob.yaml", []byte(bad))); len(errs) == 0 {
		t.Error("a CronJob with minute 61 passed the API's validation")
	}
}

// FuzzKubernetes: for any policy the parsers accept, export either refuses
// with one line or writes manifests that decode strictly into the official
// types, re-encode to the same text and pass the API's validation; so the
// copied types stay true on every path, not only the golden formation's.
func FuzzKubernetes(f *testing.F) {
	for _, p := range []string{
		testFile(f, "Procfile.policy"),
		"web: scale=3 ready=tcp:9000 memory=1.5G balance=80\nworker: ready=\"exec:test -f /tmp/up\" memory=1000001 grace=1500ms\n",
		"web: ready=tcp scale=0 sticky balance=8080\nreport: schedule=\"@every 2h\" scale=0\n",
		"*: restart=never\nworker: singleton ready-timeout=1ms\nweb: restart=always ready=tcp ready-timeout=1ms\n",
		"release: schedule=\"TZ=UTC 0 0 1 * *\" memory=1K\n",
		"web: ready=\"exec:sleep 2\" ready-timeout=1000000h\n",
		"report: schedule=\"CRON_TZ=Local 0 3 * * *\"\n",
		"*: env.TZ=UTC\nweb: env.HOST=0.0.0.0 env.A=\"$(TZ) $$ x\" env.EMPTY=\"\"\n",
	} {
		f.Add(p)
	}
	s := kubeScheme(f)
	f.Fuzz(func(t *testing.T, pol string) {
		fm, err := formation.Load(formation.Options{Dir: writeProject(t, pol), Environ: []string{}, CPUs: 2})
		if err != nil {
			return
		}
		files, _, err := export.Kubernetes(fm, export.KubernetesOptions{Image: "shop:1"})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of more than one line: %v", err)
			}
			return
		}
		for _, name := range keys(files) {
			obj := decodeStrict(t, s, name, files[name])
			if errs := apiValidate(t, obj); len(errs) > 0 {
				t.Fatalf("%s fails the API's validation: %v\npolicy:\n%s\n%s", name, errs.ToAggregate(), pol, files[name])
			}
		}
	})
}
