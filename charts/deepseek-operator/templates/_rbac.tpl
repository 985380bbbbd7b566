{{/*
The operator's permissions, split by where they can be granted. Each rule names the code that needs it,
and each verb is one that code uses: nothing else is granted (no Secrets, no writes to Nodes, none to Pods but
one annotation, no RBAC objects; no `get` where the operator only lists or applies, no `watch` on kinds nothing
watches).
*/}}

{{/* Cluster-scoped resources: always a ClusterRole. */}}
{{- define "deepseek-operator.rbac.clusterRules" -}}
# indexes.nodes: readiness, labels, taints and cordons of the nodes under the inference pods (read only).
- apiGroups: [""]
  resources: [nodes]
  verbs: [list, watch]
# kopf watches CRDs to notice the DeepSeekDeployment CRD or an add-on's CRD (KEDA, Prometheus operator) appear, change or go.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if .Values.watchNamespaces }}
# With --namespace, kopf lists and watches namespaces to learn which watched ones exist. Without it, kopf
# retries the list for about a minute at every start, serving nothing, before it assumes they exist.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- else if include "deepseek-operator.peering" . }}
# Cluster-wide peering (replicas > 1): kopf watches the ClusterKopfPeering and patches its keepalive into the status.
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings]
  verbs: [list, watch, patch]
{{- end }}
{{- end -}}

{{/* Namespaced resources: in the ClusterRole, or in a Role per watched namespace with rbac.namespaced. */}}
{{- define "deepseek-operator.rbac.namespacedRules" -}}
# DeepSeekDeployments: kopf lists and watches them and patches its progress annotations and finalizer;
# reconcile.reconcile reads each one (get) under its lock before acting on it, and the failover controller
# reads one (get) after it moved its traffic.
- apiGroups: [serving.deepseek-operator.io]
  resources: [deepseekdeployments]
  verbs: [get, list, watch, patch]
# kube.Kube.apply_status and kube.Kube.apply_failover_status (the failover controller, its own field
# manager): server-side apply (patch) to the status subresource; they never read it.
- apiGroups: [serving.deepseek-operator.io]
  resources: [deepseekdeployments/status]
  verbs: [patch]
# The children (kube.CHILD_KINDS): server-side apply (patch, and create, which the API server also checks
# when an apply creates the object), list by label for status and pruning (kube.Kube.list_children,
# kube.Kube.prune), delete when pruned. Nothing reads one by name (no get).
# Watched for drift (handlers.child_changed): Deployments, Services, PodDisruptionBudgets, HPAs.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list, watch, create, patch, delete]
# Children of add-ons, not watched (no handler): KEDA's ScaledObject, the Prometheus operator's kinds.
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [list, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors, prometheusrules]
  verbs: [list, create, patch, delete]
# indexes.inference_pods: the pods of the inference Deployments, for the controllers (the failover
# controller probes their engines over HTTP, GET /health, which needs no permission); patch: the spot
# controller annotates the one pod it moves back (controller.kubernetes.io/pod-deletion-cost), so that its
# Deployment's scale-down removes that pod (kube.Kube.annotate_pod). Nothing else writes to pods.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch, patch]
# kopf posts Events (warnings and errors) about DeepSeekDeployments, and the failover controller one per
# decision (kube.Kube.post_event); neither updates them.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if and .Values.watchNamespaces (include "deepseek-operator.peering" .) }}
# Namespaced peering (replicas > 1 with --namespace): a KopfPeering in each watched namespace.
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [list, watch, patch]
{{- end }}
{{- end -}}
