package k8svalidate

import (
	"bytes"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"

	"mhrun/export"
	"mhrun/policy"
)

// Every manifest of the test project decodes strictly into its official
// type, one object of each kind expected.
func TestKubernetesStrictDecode(t *testing.T) {
	files, _, err := export.Kubernetes(testFormation(t), testKubernetes)
	if err != nil {
		t.Fatal(err)
	}
	s := kubeScheme(t)
	kinds := map[schema.GroupVersionKind]int{}
	for _, name := range keys(files) {
		obj := decodeStrict(t, s, name, files[name])
		kinds[obj.GetObjectKind().GroupVersionKind()]++
	}
	want := map[schema.GroupVersionKind]int{
		{Version: "v1", Kind: "ConfigMap"}:                 1,
		{Group: "apps", Version: "v1", Kind: "Deployment"}: 3, // web, worker, api
		{Version: "v1", Kind: "Service"}:                   2, // web's port, api's shared socket
		{Group: "batch", Version: "v1", Kind: "CronJob"}:   1,
		{Group: "batch", Version: "v1", Kind: "Job"}:       1,
	}
	if len(kinds) != len(want) {
		t.Errorf("kinds = %v, want %v", kinds, want)
	}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d %s, want %d", kinds[k], k, n)
		}
	}

	// A field the types do not have is refused, so the check has teeth.
	bad := bytes.Replace(files["shop-web.deployment.yaml"], []byte("replicas:"), []byte("replicaz: 1\n  replicas:"), 1)
	codec := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s, kjson.SerializerOptions{Yaml: true, Strict: true})
	if _, _, err := codec.Decode(bad, nil, nil); err == nil || !strings.Contains(err.Error(), "replicaz") {
		t.Errorf("a manifest with an unknown field decoded: %v", err)
	}
}

// What export's own tests read as text means in the official types what
// the policy says: the memory limit is the policy's bytes, a probe's port
// is the named container port or the number of ready=tcp:PORT.
func TestKubernetesOfficialValues(t *testing.T) {
	f := testFormation(t)
	web := f.Process("web")
	web.Policy.Memory = 1500 << 20
	worker := f.Process("worker")
	worker.Policy.Ready = policy.Ready{Kind: policy.ReadyTCP, Port: 9000}
	worker.Policy.Memory = 1000001
	worker.Policy.ReadyTimeout = time.Minute
	files, _, err := export.Kubernetes(f, testKubernetes)
	if err != nil {
		t.Fatal(err)
	}
	s := kubeScheme(t)
	container := func(name string) corev1.Container {
		return decodeStrict(t, s, name, files[name]).(*appsv1.Deployment).Spec.Template.Spec.Containers[0]
	}
	for _, c := range []struct {
		c     corev1.Container
		bytes int64
	}{{container("shop-web.deployment.yaml"), web.Policy.Memory}, {container("shop-worker.deployment.yaml"), worker.Policy.Memory}} {
		if m := c.c.Resources.Limits[corev1.ResourceMemory]; m.Value() != c.bytes {
			t.Errorf("%s memory limit %s is %d bytes, want %d", c.c.Name, m.String(), m.Value(), c.bytes)
		}
	}
	if p := container("shop-web.deployment.yaml").ReadinessProbe.HTTPGet.Port; p.Type != intstr.String || p.StrVal != "app" {
		t.Errorf("web http probe port = %+v, want the container port named app", p)
	}
	if p := container("shop-worker.deployment.yaml").ReadinessProbe.TCPSocket.Port; p.Type != intstr.Int || p.IntVal != 9000 {
		t.Errorf("worker tcp probe port = %+v, want 9000", p)
	}
}
