#!/usr/bin/env bash
# `make e2e-kind`: the e2e suite (e2e/tests) on a kind cluster where containers really run.
#
# Creates a kind cluster shaped like the local fleet (e2e/kind/cluster.yaml), advertises GPUs on its
# workers, builds the operator and simulator images and loads them into kind, installs Prometheus,
# the operator's Helm chart and prometheus-adapter (with the chart's rules), applies
# e2e/kind/sample-simulator.yaml, then runs `pytest e2e/tests` with the operator in the cluster, so
# the serving tests run in real containers. Needs Docker; kind is built with Go when it is not installed.
#
# Environment:
#   KEEP_CLUSTER=1                    keep the cluster on exit (default: delete it)
#   KIND_CLUSTER_NAME                 cluster name (default: deepseek-e2e)
#   KIND_NODE_IMAGE                   kindest/node image (default: the one kind ships with)
#   PROMETHEUS_CHART_VERSION          prometheus-community/prometheus chart version (default: latest)
#   PROMETHEUS_ADAPTER_CHART_VERSION  prometheus-community/prometheus-adapter chart version (default: latest)
#   PYTEST_ARGS                       extra pytest arguments, e.g. "-k journeys -x"
#   VENV                              virtualenv with the dev dependencies (default: .venv)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
cd "$REPO_ROOT"

readonly KIND_VERSION=v0.32.0
readonly CLUSTER_NAME="${KIND_CLUSTER_NAME:-deepseek-e2e}"
readonly KEEP_CLUSTER="${KEEP_CLUSTER:-0}"
readonly STATE_DIR="${REPO_ROOT}/.local-cluster/kind-${CLUSTER_NAME}"
readonly KUBECONFIG_FILE="${STATE_DIR}/kubeconfig"
readonly TOOLS_DIR="${DSO_TOOLS_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/deepseek-operator/tools}"
# The names e2e/kind/operator-values.yaml and e2e/kind/sample-simulator.yaml refer to (a unit test
# checks they agree); pullPolicy Never there, as kind has no registry to pull them from.
readonly OPERATOR_IMAGE=deepseek-operator:e2e
readonly SIMULATOR_IMAGE=deepseek-simulator:e2e
readonly COMMUNITY_CHARTS=https://prometheus-community.github.io/helm-charts
readonly MONITORING_NAMESPACE=monitoring
readonly OPERATOR_NAMESPACE=deepseek-system
readonly DEMO_NAMESPACE=deepseek-demo
readonly DEMO_SAMPLE=e2e/kind/sample-simulator.yaml
VENV="${VENV:-.venv}"
[[ "$VENV" == /* ]] || VENV="${REPO_ROOT}/${VENV}"
readonly VENV

# Set once known; the exit trap reads them.
KIND=""
KUBECTL=""
HELM=""
PROXY_PID=""
CLUSTER_IN_USE=0

say() { printf '[e2e-kind] %s\n' "$*" >&2; }
die() {
	printf '[e2e-kind] error: %s\n' "$*" >&2
	exit 1
}
kube() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
helm_run() { "$HELM" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

cleanup() {
	local status=$?
	if [[ -n "$PROXY_PID" ]]; then
		kill "$PROXY_PID" 2>/dev/null || true
	fi
	if [[ "$CLUSTER_IN_USE" == 1 ]]; then
		if [[ "$KEEP_CLUSTER" == 1 ]]; then
			say "keeping kind cluster ${CLUSTER_NAME} (KEEP_CLUSTER=1):"
			say "  export KUBECONFIG=${KUBECONFIG_FILE}"
			say "  delete it with: ${KIND} delete cluster --name ${CLUSTER_NAME}"
		else
			say "deleting kind cluster ${CLUSTER_NAME} (KEEP_CLUSTER=1 keeps it)"
			"$KIND" delete cluster --name "$CLUSTER_NAME" || say "warning: could not delete kind cluster ${CLUSTER_NAME}"
		fi
	fi
	exit "$status"
}
trap cleanup EXIT
# An interrupted run still deletes its cluster: bash runs the EXIT trap only on a normal exit.
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------- prerequisites

check_docker() {
	command -v docker >/dev/null 2>&1 ||
		die "docker is not installed: the kind path runs real containers and needs Docker (\`make e2e\` runs the suite on the simulated local cluster without it)"
	docker info >/dev/null 2>&1 ||
		die "the Docker daemon is not reachable (\`docker info\` failed): start Docker, or check that your user may use it"
}

# Prints the kind binary to use: the one on PATH, else the pinned one in the tools cache, built
# with Go on first use.
find_kind() {
	local found
	if found="$(command -v kind)"; then
		local found_version
		found_version="$("$found" version)"
		if [[ "$found_version" != "kind ${KIND_VERSION} "* ]]; then
			say "warning: using ${found_version} from ${found}; this script is tested with kind ${KIND_VERSION}"
		fi
		printf '%s\n' "$found"
		return
	fi
	local cached="${TOOLS_DIR}/kind-${KIND_VERSION}/kind"
	if [[ -x "$cached" ]]; then
		printf '%s\n' "$cached"
		return
	fi
	command -v go >/dev/null 2>&1 ||
		die "kind is not installed and Go is not available to build it: install kind ${KIND_VERSION} (https://kind.sigs.k8s.io/docs/user/quick-start/#installation) or Go"
	# Outside any module, so that no go.mod around the checkout changes what is resolved.
	local versions
	versions="$(cd "${TMPDIR:-/tmp}" && go list -m -versions sigs.k8s.io/kind)" ||
		die "\`go list -m -versions sigs.k8s.io/kind\` failed: is the Go module proxy reachable (GOPROXY)?"
	[[ " ${versions} " == *" ${KIND_VERSION} "* ]] ||
		die "the Go module proxy does not list sigs.k8s.io/kind ${KIND_VERSION} (it lists: ${versions#sigs.k8s.io/kind })"
	say "kind is not installed: building sigs.k8s.io/kind@${KIND_VERSION} into $(dirname "$cached")"
	(cd "${TMPDIR:-/tmp}" && GOBIN="$(dirname "$cached")" go install "sigs.k8s.io/kind@${KIND_VERSION}") ||
		die "go install sigs.k8s.io/kind@${KIND_VERSION} failed (see above)"
	printf '%s\n' "$cached"
}

check_prerequisites() {
	say "checking prerequisites"
	check_docker
	KIND="$(find_kind)"
	say "kind: ${KIND} ($("$KIND" version))"
	command -v curl >/dev/null 2>&1 || die "curl is not installed: it advertises the GPUs through kubectl proxy"
	[[ -x "${VENV}/bin/pytest" ]] || die "no virtualenv with pytest at ${VENV}: run \`make venv\` (\`make e2e-kind\` does)"
	# The project's pinned kubectl and helm (cached in the tools directory, built or downloaded once).
	local tool_paths
	tool_paths="$(PYTHONPATH="${REPO_ROOT}/e2e" "${VENV}/bin/python" -c '
from localcluster.tools import ensure_tools
tools = ensure_tools(["kubectl", "helm"])
print(tools["kubectl"].path)
print(tools["helm"].path)
')" || die "could not provide the pinned kubectl and helm (see above)"
	KUBECTL="$(sed -n 1p <<<"$tool_paths")"
	HELM="$(sed -n 2p <<<"$tool_paths")"
	[[ -d charts/deepseek-operator ]] || die "charts/deepseek-operator is missing: the operator is installed from its Helm chart"
}

# ---------------------------------------------------------------------------------- cluster

create_cluster() {
	mkdir -p "$STATE_DIR"
	local clusters
	clusters="$("$KIND" get clusters 2>/dev/null)" || clusters=""
	if grep -qx "$CLUSTER_NAME" <<<"$clusters"; then
		say "kind cluster ${CLUSTER_NAME} exists: reusing it (\`${KIND} delete cluster --name ${CLUSTER_NAME}\` starts afresh)"
		CLUSTER_IN_USE=1
		"$KIND" export kubeconfig --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG_FILE"
	else
		say "creating kind cluster ${CLUSTER_NAME} from e2e/kind/cluster.yaml (1 control plane, 4 GPU workers)"
		CLUSTER_IN_USE=1
		"$KIND" create cluster --name "$CLUSTER_NAME" --config e2e/kind/cluster.yaml \
			--kubeconfig "$KUBECONFIG_FILE" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
	fi
	kube wait --for=condition=Ready nodes --all --timeout=180s >/dev/null
	kube get nodes -L topology.kubernetes.io/region,topology.kubernetes.io/zone,karpenter.sh/capacity-type,nvidia.com/gpu.product
}

# kind cannot give a node GPUs; like a device plugin would, advertise them as an extended resource
# by a JSON patch on the node's status, through kubectl proxy (the documented way; the kubelet keeps
# extended resources it does not manage). The count is each worker's nvidia.com/gpu.count label.
advertise_gpus() {
	local gpu_nodes
	gpu_nodes="$(kube get nodes -l nvidia.com/gpu.count \
		-o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.labels.nvidia\.com/gpu\.count}{"\n"}{end}')"
	[[ -n "$gpu_nodes" ]] || die "no node carries the nvidia.com/gpu.count label: was the cluster created from e2e/kind/cluster.yaml?"

	local proxy_log="${STATE_DIR}/kubectl-proxy.log"
	# The binary itself in the background (not the kube function), so that $! is kubectl's own pid.
	"$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" proxy --port=0 >"$proxy_log" 2>&1 &
	PROXY_PID=$!
	# It prints the port it picked: "Starting to serve on 127.0.0.1:<port>".
	local port="" polls=0
	until port="$(sed -n 's/^Starting to serve on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$proxy_log")" && [[ -n "$port" ]]; do
		((polls++ < 50)) || die "kubectl proxy did not start within 10 s: $(cat "$proxy_log")"
		sleep 0.2
	done

	local node count
	while read -r node count; do
		say "advertising ${count} nvidia.com/gpu on ${node}"
		curl --fail --silent --show-error --output /dev/null \
			--header 'Content-Type: application/json-patch+json' --request PATCH \
			--data "[{\"op\": \"add\", \"path\": \"/status/capacity/nvidia.com~1gpu\", \"value\": \"${count}\"}]" \
			"http://127.0.0.1:${port}/api/v1/nodes/${node}/status" ||
			die "could not patch the status of node ${node}"
		kube wait --for="jsonpath={.status.allocatable.nvidia\.com/gpu}=${count}" "node/${node}" --timeout=60s >/dev/null
	done <<<"$gpu_nodes"

	kill "$PROXY_PID"
	wait "$PROXY_PID" 2>/dev/null || true
	PROXY_PID=""
}

# ---------------------------------------------------------------------------------- images

build_and_load_images() {
	# Both Dockerfiles build from the repository root (see .dockerignore); BuildKit for RUN --mount.
	say "building ${OPERATOR_IMAGE} from operator/Dockerfile"
	DOCKER_BUILDKIT=1 docker build --file operator/Dockerfile --tag "$OPERATOR_IMAGE" .
	say "building ${SIMULATOR_IMAGE} from images/simulator/Dockerfile"
	DOCKER_BUILDKIT=1 docker build --file images/simulator/Dockerfile --tag "$SIMULATOR_IMAGE" .
	say "loading both images into kind"
	"$KIND" load docker-image --name "$CLUSTER_NAME" "$OPERATOR_IMAGE" "$SIMULATOR_IMAGE"
}

# ---------------------------------------------------------------------------------- charts

install_prometheus() {
	say "installing Prometheus (prometheus-community/prometheus ${PROMETHEUS_CHART_VERSION:-latest}) in ${MONITORING_NAMESPACE}"
	# An empty --version means the latest chart.
	helm_run upgrade --install prometheus prometheus --repo "$COMMUNITY_CHARTS" \
		--version "${PROMETHEUS_CHART_VERSION:-}" --namespace "$MONITORING_NAMESPACE" --create-namespace \
		--values e2e/kind/prometheus-values.yaml --wait --timeout 5m
}

install_operator() {
	say "installing the operator chart (charts/deepseek-operator, image ${OPERATOR_IMAGE}) in ${OPERATOR_NAMESPACE}"
	# Its prometheus-adapter rules ConfigMap goes to the monitoring namespace, created above.
	helm_run upgrade --install deepseek-operator charts/deepseek-operator \
		--namespace "$OPERATOR_NAMESPACE" --create-namespace \
		--values e2e/kind/operator-values.yaml --wait --timeout 5m
}

install_prometheus_adapter() {
	say "installing prometheus-adapter (${PROMETHEUS_ADAPTER_CHART_VERSION:-latest}) with the operator chart's rules"
	helm_run upgrade --install prometheus-adapter prometheus-adapter --repo "$COMMUNITY_CHARTS" \
		--version "${PROMETHEUS_ADAPTER_CHART_VERSION:-}" --namespace "$MONITORING_NAMESPACE" \
		--values e2e/kind/adapter-values.yaml --wait --timeout 5m
	kube wait --for=condition=Available apiservice/v1beta1.custom.metrics.k8s.io --timeout=180s
}

apply_demo_sample() {
	local name
	name="$("${VENV}/bin/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["metadata"]["name"])' "$DEMO_SAMPLE")"
	say "applying ${DEMO_SAMPLE} (${name}) in ${DEMO_NAMESPACE} and waiting for it to be Ready"
	kube create namespace "$DEMO_NAMESPACE" --dry-run=client -o yaml | kube apply -f - >/dev/null
	kube apply --namespace "$DEMO_NAMESPACE" -f "$DEMO_SAMPLE"
	kube wait --namespace "$DEMO_NAMESPACE" --for=condition=Ready "deepseekdeployment/${name}" --timeout=300s
	kube get deepseekdeployments --namespace "$DEMO_NAMESPACE" -o wide
}

# ---------------------------------------------------------------------------------- tests

print_diagnostics() {
	say "diagnostics after the failed run:"
	kube get nodes -o wide || true
	kube get deepseekdeployments --all-namespaces -o wide || true
	kube get pods --all-namespaces -o wide || true
	kube logs --namespace "$OPERATOR_NAMESPACE" deployment/deepseek-operator --tail=100 || true
	kube get events --all-namespaces --sort-by=.lastTimestamp | tail -n 40 || true
}

run_tests() {
	local pytest_args=()
	read -r -a pytest_args <<<"${PYTEST_ARGS:-}"
	say "running pytest e2e/tests on kind, operator in the cluster"
	local status=0
	E2E_KUBECONFIG="$KUBECONFIG_FILE" E2E_OPERATOR_IN_CLUSTER=1 \
		PYTHONPATH="${REPO_ROOT}/e2e:${REPO_ROOT}/images/simulator:${REPO_ROOT}/images/inference" \
		"${VENV}/bin/pytest" e2e/tests ${pytest_args[@]+"${pytest_args[@]}"} || status=$?
	if [[ "$status" != 0 ]]; then
		print_diagnostics
	fi
	return "$status"
}

main() {
	case "$KEEP_CLUSTER" in
	0 | 1) ;;
	*) die "KEEP_CLUSTER must be 0 or 1, not '${KEEP_CLUSTER}'" ;;
	esac
	local started=$SECONDS
	check_prerequisites
	create_cluster
	advertise_gpus
	build_and_load_images
	install_prometheus
	install_operator
	install_prometheus_adapter
	apply_demo_sample
	run_tests
	say "e2e on kind passed in $((SECONDS - started)) s"
}

main "$@"
