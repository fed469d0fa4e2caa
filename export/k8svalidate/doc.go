// Package k8svalidate holds tests, and no code: every manifest that
// mhrun export kubernetes writes decodes strictly into the official
// k8s.io/api types, passes the Kubernetes API server's own validation of
// a create, and reaches the container as written through the kubelet's
// $(VAR) expansion, all run offline from k8s.io/kubernetes. It is a module
// of its own so that mhrun's go.mod, and a fresh clone's go test ./...,
// do without k8s.io/kubernetes, k8s.io/api and the replace block the
// staging modules need; CI (.ci/run) runs it apart.
package k8svalidate
