// Package k8svalidate holds tests, and no code: every manifest that
// mhrun export kubernetes writes must pass the Kubernetes API server's
// own validation of a create and the kubelet's expansion of $(VAR), run
// offline from k8s.io/kubernetes. It is a module of its own so that
// mhrun's go.mod, and a fresh clone's go test ./..., do without
// k8s.io/kubernetes and the replace block its staging modules need; CI
// (.ci/run) runs it apart.
package k8svalidate
