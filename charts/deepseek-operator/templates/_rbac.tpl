{{/*
The operator's permissions, split by where they can be granted. Each rule names the code that needs it;
nothing else is granted: no Secrets, no Pods, no Nodes, no RBAC objects.
*/}}

{{/* Cluster-scoped resources: always a ClusterRole. */}}
{{- define "deepseek-operator.rbac.clusterRules" -}}
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
# handlers.py reads the owner when a child changes.
- apiGroups: [serving.deepseek-operator.io]
  resources: [deepseekdeployments]
  verbs: [get, list, watch, patch]
# kube.Kube.apply_status: server-side apply to the status subresource.
- apiGroups: [serving.deepseek-operator.io]
  resources: [deepseekdeployments/status]
  verbs: [get, patch]
# The children (kube.CHILD_KINDS): server-side apply (patch, which creates the missing ones), list by label
# for status and pruning, watch for drift (handlers.child_changed), delete when pruned.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors, prometheusrules]
  verbs: [get, list, watch, create, patch, delete]
# kopf posts Events (warnings and errors) about DeepSeekDeployments; it never updates them.
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
