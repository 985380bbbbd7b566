"""SHA-256 of every official release download `tools` may use, pinned here rather than fetched from the
host that serves the binary (a checksum from the same host proves nothing when that host is compromised).

Keys are (tool, Go architecture); the value is the sha256 of the file downloaded from `Tool.release_url`
(the tarball for tools shipped in one). `None` means no published checksum could be found for that
download: `tools` then never downloads it and builds the tool from Go modules instead (the README lists
these). Where each value comes from is noted beside it; update them together with the versions.
"""

from __future__ import annotations

ARCHITECTURES = ("amd64", "arm64")

# Tools that have an official binary download: a unit test checks every (tool, arch) is present.
PINNED_SHA256: dict[tuple[str, str], str | None] = {
    # etcd v3.6.16: no published SHA256SUMS found in the sources reachable here.
    ("etcd", "amd64"): None,
    ("etcd", "arm64"): None,
    # Kubernetes v1.36.3 (dl.k8s.io .sha256 files): not found in the sources reachable here.
    **{
        (name, arch): None
        for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
        for arch in ARCHITECTURES
    },
    # kwok v0.8.0 release assets kwok-linux-<arch>: from nixpkgs' kwok-bin (SRI hashes, converted) and,
    # for amd64, a second independent pin list.
    ("kwok", "amd64"): "f5a4385a2ae1b9dd7f8acae18e002a75c0ebba124ae9d7259aa8dadb50711f46",
    ("kwok", "arm64"): "628f7d277860f524a2a775c217adcc58828e7b59ab0933680315784f1b8b0e37",
    # helm v3.21.4 helm-v3.21.4-linux-<arch>.tar.gz: from the v3.21.4 release notes (helm/helm).
    ("helm", "amd64"): "61f88ab166748cb19604d7884cb100ae9ccb13804ddeb98e08af167eacbb6a14",
    ("helm", "arm64"): "b54c04b4e0b2540bbdc08c17a121dab70e9a2ed0de5705528fec68a5fd3b85a7",
    # Prometheus v3.16.0 prometheus-3.16.0.linux-<arch>.tar.gz (prometheus and promtool share it):
    # its sha256sums.txt was not found in the sources reachable here.
    **{(name, arch): None for name in ("prometheus", "promtool") for arch in ARCHITECTURES},
    # actionlint v1.7.12 actionlint_1.7.12_linux_<arch>.tar.gz: from several independent pin lists that
    # match the release's actionlint_1.7.12_checksums.txt.
    ("actionlint", "amd64"): "8aca8db96f1b94770f1b0d72b6dddcb1ebb8123cb3712530b08cc387b349a3d8",
    ("actionlint", "arm64"): "325e971b6ba9bfa504672e29be93c24981eeb1c07576d730e9f7c8805afff0c6",
}
