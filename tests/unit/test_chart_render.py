"""The chart renders valid Kubernetes 1.36 objects for each CI value set, and refuses wrong values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from chart_support import CHART, CI_VALUES, NAMESPACE, find, only, operator_container, render, run_helm

KUBERNETES_VERSION = "1.36"
# Kinds defined by CRDs, which kubernetes-validate has no schema for: rendered, parsed and checked
# below by the tests of their content, not by schema.
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("kopf.dev/v1", "ClusterKopfPeering"),
    ("kopf.dev/v1", "KopfPeering"),
}
CI_IDS = [path.name.removesuffix("-values.yaml") for path in CI_VALUES]


def test_the_ci_value_sets_are_the_four_documented_ones() -> None:
    assert CI_IDS == ["default", "ha", "monitoring", "namespaced"]


@pytest.mark.parametrize("values_file", CI_VALUES, ids=CI_IDS)
def test_helm_lint_strict_passes(values_file: Path) -> None:
    result = run_helm("lint", "--strict", str(CHART), "--values", str(values_file))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values_file", CI_VALUES, ids=CI_IDS)
def test_every_rendered_object_is_valid_for_kubernetes_1_36(values_file: Path) -> None:
    objects = render([values_file], include_crds=True)
    assert objects
    crd_defined = []
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
            crd_defined.append(obj)
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {error.message} at {list(error.path)}")
    for obj in crd_defined:
        assert obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "dso"


@pytest.mark.parametrize("values_file", CI_VALUES, ids=CI_IDS)
def test_every_object_carries_the_standard_labels(values_file: Path) -> None:
    for obj in render([values_file]):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "deepseek-operator"
        assert labels["app.kubernetes.io/instance"] == "dso"
        assert labels["app.kubernetes.io/component"]
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "deepseek-operator-0.1.0"


# (values given with --set, text helm must print). The schema messages are helm's own wording.
BAD_VALUES = [
    pytest.param(["replicas=0"], "at '/replicas': minimum: got 0, want 1", id="zero-replicas"),
    pytest.param(["replicas=two"], "at '/replicas': got string, want integer", id="replicas-not-a-number"),
    pytest.param(["replica=2"], "additional properties 'replica' not allowed", id="misspelt-top-level-key"),
    pytest.param(
        ["rbac.namespace=true"],
        "at '/rbac': additional properties 'namespace' not allowed",
        id="misspelt-nested-key",
    ),
    pytest.param(
        ["image.pullPolicy=Sometimes"],
        "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
        id="pull-policy",
    ),
    pytest.param(["image.digest=sha256:abc"], "at '/image/digest'", id="short-digest"),
    pytest.param(
        ["logFormat=yaml"], "at '/logFormat': value must be one of 'json', 'plain', 'full'", id="log-format"
    ),
    pytest.param(["watchNamespaces={Team-A}"], "at '/watchNamespaces/0'", id="namespace-not-a-dns-label"),
    pytest.param(
        ["metrics.port=80"], "at '/metrics/port': minimum: got 80, want 1,024", id="privileged-metrics-port"
    ),
    pytest.param(
        ["metrics.serviceMonitor.interval=30"],
        "at '/metrics/serviceMonitor/interval'",
        id="interval-without-unit",
    ),
    pytest.param(
        ["prometheusRule.errorRatio=5"],
        "at '/prometheusRule/errorRatio': exclusiveMaximum: got 5, want 1",
        id="error-ratio-as-percent",
    ),
    pytest.param(["resources.requests.cpu=lots"], "at '/resources/requests/cpu'", id="cpu-not-a-quantity"),
    pytest.param(["tolerations[0].effect=NoWay"], "at '/tolerations/0/effect'", id="toleration-effect"),
    pytest.param(["extraArgs={verbose}"], "at '/extraArgs/0'", id="extra-arg-not-an-option"),
    # Cross-field rules, with the chart's own messages.
    pytest.param(
        ["rbac.namespaced=true"],
        "rbac.namespaced=true needs watchNamespaces",
        id="namespaced-without-namespaces",
    ),
    pytest.param(["metrics.port=8080"], "metrics.port must not be 8080", id="metrics-on-the-liveness-port"),
    pytest.param(
        ["serviceAccount.create=false"],
        "serviceAccount.name is required when serviceAccount.create is false",
        id="no-service-account",
    ),
]


@pytest.mark.parametrize(("set_values", "message"), BAD_VALUES)
def test_wrong_values_fail_with_a_clear_message(set_values: list[str], message: str) -> None:
    args = ["template", "dso", str(CHART)]
    for assignment in set_values:
        args += ["--set", assignment]
    result = run_helm(*args)
    assert result.returncode != 0
    assert message in result.stderr


def test_default_runs_one_standalone_replica_with_recreate_watching_all_namespaces() -> None:
    objects = render()
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = operator_container(objects)
    assert container["args"] == [
        "--liveness=http://0.0.0.0:8080/healthz",
        "--all-namespaces",
        "--standalone",
        "--log-format=json",
    ]
    assert {"name": "DEEPSEEK_OPERATOR_METRICS_ADDRESS", "value": "0.0.0.0:9090"} in container["env"]
    assert container["image"] == "ghcr.io/deepseek-operator/operator:0.1.0"
    for probe in (container["livenessProbe"], container["readinessProbe"]):
        assert probe["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert {"name": "healthz", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    assert not find(objects, "ClusterKopfPeering") + find(objects, "KopfPeering")


def test_more_replicas_run_kopf_peering_with_its_peering_object() -> None:
    objects = render([CHART / "ci" / "ha-values.yaml"])
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert "strategy" not in deployment["spec"]  # RollingUpdate: peering keeps one replica active
    args = operator_container(objects)["args"]
    assert "--peering=deepseek-operator" in args
    assert "--standalone" not in args
    assert only(objects, "ClusterKopfPeering")["metadata"]["name"] == "deepseek-operator"
    peering_rules = [r for r in only(objects, "ClusterRole")["rules"] if r["apiGroups"] == ["kopf.dev"]]
    assert peering_rules == [
        {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": ["list", "watch", "patch"]}
    ]


def test_namespaced_mode_watches_each_namespace_with_a_role_there() -> None:
    objects = render([CHART / "ci" / "namespaced-values.yaml"])
    args = operator_container(objects)["args"]
    assert "--namespace=inference-a" in args
    assert "--namespace=inference-b" in args
    assert "--all-namespaces" not in args
    roles = find(objects, "Role")
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["inference-a", "inference-b"]
    bindings = find(objects, "RoleBinding")
    assert sorted(binding["metadata"]["namespace"] for binding in bindings) == ["inference-a", "inference-b"]
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "dso-deepseek-operator", "namespace": NAMESPACE}
        ]
    cluster_rules = only(objects, "ClusterRole")["rules"]
    assert {resource for rule in cluster_rules for resource in rule["resources"]} == {
        "customresourcedefinitions",
        "namespaces",
        "nodes",
    }
    assert {verb for rule in cluster_rules for verb in rule["verbs"]} == {"list", "watch"}


def test_namespaced_peering_uses_a_kopf_peering_in_each_watched_namespace() -> None:
    objects = render([CHART / "ci" / "namespaced-values.yaml"], ["replicas=2"])
    peerings = find(objects, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["inference-a", "inference-b"]
    assert not find(objects, "ClusterKopfPeering")
    for role in find(objects, "Role"):
        assert {
            "apiGroups": ["kopf.dev"],
            "resources": ["kopfpeerings"],
            "verbs": ["list", "watch", "patch"],
        } in role["rules"]


FORBIDDEN_RESOURCES = {
    "secrets",
    "pods/exec",
    "pods/eviction",
    "nodes/proxy",
    "configmaps",
    "serviceaccounts",
    "serviceaccounts/token",
    "roles",
    "rolebindings",
    "clusterroles",
    "clusterrolebindings",
    "*",
}


@pytest.mark.parametrize("values_file", CI_VALUES, ids=CI_IDS)
def test_rbac_grants_nothing_beyond_what_the_operator_uses(values_file: Path) -> None:
    objects = render([values_file])
    rules = [
        rule for kind in ("ClusterRole", "Role") for role in find(objects, kind) for rule in role["rules"]
    ]
    assert rules
    for rule in rules:
        assert not set(rule["resources"]) & FORBIDDEN_RESOURCES, rule
        assert "*" not in rule["verbs"], rule
        assert "*" not in rule["apiGroups"], rule
        assert not {"escalate", "bind", "impersonate", "update", "deletecollection"} & set(rule["verbs"]), (
            rule
        )
    crd_rules = [rule for rule in rules if "customresourcedefinitions" in rule["resources"]]
    assert crd_rules == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        }
    ]
    event_rules = [rule for rule in rules if "events" in rule["resources"]]
    assert event_rules
    assert all(rule["verbs"] == ["create"] for rule in event_rules)
    # Nodes are only read, through the controllers' watch-backed indexes; pods too, and patched for the
    # spot controller's pod-deletion-cost annotation.
    node_rules = [rule for rule in rules if "nodes" in rule["resources"]]
    pod_rules = [rule for rule in rules if "pods" in rule["resources"]]
    assert node_rules
    assert pod_rules
    assert all(rule["verbs"] == ["list", "watch"] for rule in node_rules), node_rules
    assert all(rule["verbs"] == ["list", "watch", "patch"] for rule in pod_rules), pod_rules


def watched_by_a_handler() -> set[tuple[str, str]]:
    """(group, plural) of every kind a kopf handler of the operator watches, read from kopf's registry."""
    import deepseek_operator.handlers  # noqa: F401 (registers the handlers)
    import kopf

    registry = kopf.get_default_registry()
    handlers = [*registry._watching.get_all_handlers(), *registry._changing.get_all_handlers()]
    handlers += [*registry._spawning.get_all_handlers(), *registry._indexing.get_all_handlers()]
    # Selector.any_name is the plural the decorators name (kopf's own field; no public accessor).
    return {(handler.selector.group or "", handler.selector.any_name) for handler in handlers}


def test_rbac_grants_each_child_kind_exactly_the_verbs_the_operator_uses() -> None:
    """Server-side apply (patch; create when it creates), list by label, delete when pruned: on every child
    kind. watch only where a handler watches the kind; get nowhere (no child is read by name)."""
    from deepseek_operator.kube import CHILD_KINDS

    rules = only(render(), "ClusterRole")["rules"]
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    plural = {
        "HorizontalPodAutoscaler": "horizontalpodautoscalers",
        "ScaledObject": "scaledobjects",
        "ServiceMonitor": "servicemonitors",
        "PrometheusRule": "prometheusrules",
        "PodDisruptionBudget": "poddisruptionbudgets",
        "Service": "services",
        "Deployment": "deployments",
    }
    watched = watched_by_a_handler()
    assert ("apps", "deployments") in watched
    for api_version, kind in CHILD_KINDS:
        key = (api_version.rpartition("/")[0], plural[kind])
        expected = {"list", "create", "patch", "delete"} | ({"watch"} if key in watched else set())
        assert granted[key] == expected, kind
    # The custom resource: kopf lists, watches and patches it (annotations, finalizer); each reconcile
    # reads it; status is only ever applied.
    assert granted[("serving.deepseek-operator.io", "deepseekdeployments")] == {
        "get",
        "list",
        "watch",
        "patch",
    }
    assert granted[("serving.deepseek-operator.io", "deepseekdeployments/status")] == {"patch"}
    # The indexes of indexes.py: pods and nodes, listed and watched; pods patched for the spot
    # controller's pod-deletion-cost (kube.Kube.annotate_pod), nothing more.
    assert {("", "pods"), ("", "nodes")} <= watched
    assert granted[("", "nodes")] == {"list", "watch"}
    assert granted[("", "pods")] == {"list", "watch", "patch"}


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    objects = render([CHART / "ci" / "ha-values.yaml"])
    test_pod = only(objects, "Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    pod_specs = [only(objects, "Deployment")["spec"]["template"]["spec"], test_pod["spec"]]
    for pod in pod_specs:
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["runAsUser"] == 65532  # the uid of operator/Dockerfile
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
    operator_pod = pod_specs[0]
    assert {"name": "tmp", "mountPath": "/tmp"} in operator_pod["containers"][0]["volumeMounts"]
    assert operator_pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    dockerfile = (CHART.parents[1] / "operator" / "Dockerfile").read_text()
    assert "USER 65532:65532" in dockerfile


def test_image_digest_pins_the_image_and_scheduling_values_reach_the_pod() -> None:
    digest = "sha256:" + "a" * 64
    objects = render(
        set_values=[
            f"image.digest={digest}",
            "imagePullSecrets[0].name=registry",
            "nodeSelector.kubernetes\\.io/os=linux",
            "priorityClassName=system-cluster-critical",
            "tolerations[0].key=dedicated,tolerations[0].operator=Exists,tolerations[0].effect=NoSchedule",
        ]
    )
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == f"ghcr.io/deepseek-operator/operator@{digest}"
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]


def test_metrics_service_exposes_port_9090_named_metrics() -> None:
    objects = render()
    service = only(objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container["env"]}


def test_helm_test_pod_checks_the_metrics_service() -> None:
    objects = render()
    (container,) = only(objects, "Pod")["spec"]["containers"]
    assert (
        _env(container)["METRICS_URL"] == f"http://dso-deepseek-operator-metrics.{NAMESPACE}.svc:9090/metrics"
    )
    assert container["command"][:2] == ["python", "-c"]
