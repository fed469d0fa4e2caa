package export

// The Kubernetes objects export writes, as the subset of the official
// types (k8s.io/api core/v1, apps/v1, batch/v1) that it fills in. They are
// copied here rather than imported because the official packages nearly
// double mhrun's binary (13.9 → 25.2 MB) and add 3.7 MiB to the peak RSS
// of every mhrun process, the runner included, for a command run now and
// then (measured in README.md). The field names cannot drift unnoticed:
// the tests of export/k8svalidate, a module of its own, decode every
// manifest strictly into the official types (an unknown field fails),
// compare the re-encoded object with the file, and run the API server's
// own validation on it.

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

type objectMeta struct {
	Name      string            `json:"name,omitempty"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

type configMap struct {
	typeMeta
	Metadata objectMeta        `json:"metadata"`
	Data     map[string]string `json:"data,omitempty"`
}

type deployment struct {
	typeMeta
	Metadata objectMeta     `json:"metadata"`
	Spec     deploymentSpec `json:"spec"`
}

type deploymentSpec struct {
	Replicas *int32              `json:"replicas,omitempty"`
	Selector labelSelector       `json:"selector"`
	Strategy *deploymentStrategy `json:"strategy,omitempty"`
	Template podTemplateSpec     `json:"template"`
}

type deploymentStrategy struct {
	Type string `json:"type,omitempty"`
}

type labelSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

type podTemplateSpec struct {
	Metadata objectMeta `json:"metadata"`
	Spec     podSpec    `json:"spec"`
}

type podSpec struct {
	Containers                    []container `json:"containers"`
	RestartPolicy                 string      `json:"restartPolicy,omitempty"`
	TerminationGracePeriodSeconds *int64      `json:"terminationGracePeriodSeconds,omitempty"`
}

type container struct {
	Name           string               `json:"name"`
	Image          string               `json:"image,omitempty"`
	Command        []string             `json:"command,omitempty"`
	WorkingDir     string               `json:"workingDir,omitempty"`
	Ports          []containerPort      `json:"ports,omitempty"`
	EnvFrom        []envFromSource      `json:"envFrom,omitempty"`
	Env            []envVar             `json:"env,omitempty"`
	Resources      resourceRequirements `json:"resources,omitzero"`
	ReadinessProbe *probe               `json:"readinessProbe,omitempty"`
	StartupProbe   *probe               `json:"startupProbe,omitempty"`
}

type containerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
}

type envFromSource struct {
	ConfigMapRef *localObjectReference `json:"configMapRef,omitempty"`
}

type localObjectReference struct {
	Name string `json:"name"`
}

type envVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *envVarSource `json:"valueFrom,omitempty"`
}

type envVarSource struct {
	FieldRef *objectFieldSelector `json:"fieldRef,omitempty"`
}

type objectFieldSelector struct {
	FieldPath string `json:"fieldPath"`
}

type resourceRequirements struct {
	Limits map[string]string `json:"limits,omitempty"` // quantities, e.g. "300Mi"
}

type probe struct {
	Exec             *execAction      `json:"exec,omitempty"`
	HTTPGet          *httpGetAction   `json:"httpGet,omitempty"`
	TCPSocket        *tcpSocketAction `json:"tcpSocket,omitempty"`
	TimeoutSeconds   int32            `json:"timeoutSeconds,omitempty"`
	PeriodSeconds    int32            `json:"periodSeconds,omitempty"`
	FailureThreshold int32            `json:"failureThreshold,omitempty"`
}

type execAction struct {
	Command []string `json:"command,omitempty"`
}

// A port of a probe or Service target is a number or a port's name, as
// intstr.IntOrString is: an int32 or a string here.
type httpGetAction struct {
	Path string `json:"path,omitempty"`
	Port any    `json:"port"`
}

type tcpSocketAction struct {
	Port any `json:"port"`
}

type service struct {
	typeMeta
	Metadata objectMeta  `json:"metadata"`
	Spec     serviceSpec `json:"spec"`
}

type serviceSpec struct {
	Ports           []servicePort     `json:"ports,omitempty"`
	Selector        map[string]string `json:"selector,omitempty"`
	SessionAffinity string            `json:"sessionAffinity,omitempty"`
}

type servicePort struct {
	Name       string `json:"name,omitempty"`
	Protocol   string `json:"protocol,omitempty"`
	Port       int32  `json:"port"`
	TargetPort any    `json:"targetPort,omitempty"`
}

type cronJob struct {
	typeMeta
	Metadata objectMeta  `json:"metadata"`
	Spec     cronJobSpec `json:"spec"`
}

type cronJobSpec struct {
	Schedule          string          `json:"schedule"`
	TimeZone          *string         `json:"timeZone,omitempty"`
	ConcurrencyPolicy string          `json:"concurrencyPolicy,omitempty"`
	Suspend           *bool           `json:"suspend,omitempty"`
	JobTemplate       jobTemplateSpec `json:"jobTemplate"`
}

type jobTemplateSpec struct {
	Metadata objectMeta `json:"metadata"`
	Spec     jobSpec    `json:"spec"`
}

type job struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     jobSpec    `json:"spec"`
}

type jobSpec struct {
	Parallelism  *int32          `json:"parallelism,omitempty"`
	Completions  *int32          `json:"completions,omitempty"`
	BackoffLimit *int32          `json:"backoffLimit,omitempty"`
	Suspend      *bool           `json:"suspend,omitempty"`
	Template     podTemplateSpec `json:"template"`
}
