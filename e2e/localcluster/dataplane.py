"""`python -m localcluster.dataplane`: the live data plane of a local cluster, as one process.

It runs the pod runtime (a real simulator process behind each simulator pod, see `podruntime`) and
the Service proxy (see `serviceproxy`), fed by watches of pods, nodes, Services and EndpointSlices
against the local API server. `LocalCluster` starts it beside kwok; it holds one loopback block
(`addresses.claim_block`) for its lifetime, and its simulator processes die with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from localcluster.addresses import AddressAllocator, claim_block
from localcluster.kube import api_client_for
from localcluster.podruntime import PodRuntime
from localcluster.serviceproxy import ServiceProxy

log = logging.getLogger("localcluster.dataplane")

READY_FILE = "dataplane.json"
WATCH_TIMEOUT_SECONDS = 240
RETRY_SECONDS = 1.0

Deliver = Callable[[str, dict[str, Any]], None]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def watch_forever(
    list_function: Callable[..., Any], deliver: Deliver, stop: threading.Event, what: str
) -> None:
    """List, then watch from that list's resourceVersion; relist after an error or an expired watch.

    A relist delivers every object as ADDED and a DELETED for each object that vanished meanwhile, so
    the consumer's cache converges whatever it missed.
    """
    from kubernetes import watch
    from kubernetes.client.exceptions import ApiException

    known: dict[str, dict[str, Any]] = {}
    while not stop.is_set():
        try:
            listing = list_function(_preload_content=False)
            document = json.loads(listing.data)
            seen: dict[str, dict[str, Any]] = {}
            for item in document.get("items") or []:
                seen[item["metadata"]["uid"]] = item
                deliver("ADDED", item)
            for uid, item in known.items():
                if uid not in seen:
                    deliver("DELETED", item)
            known = seen
            resource_version = document["metadata"]["resourceVersion"]
            watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
            for event in watcher.stream(
                list_function,
                resource_version=resource_version,
                timeout_seconds=WATCH_TIMEOUT_SECONDS,
                allow_watch_bookmarks=True,
                _preload_content=False,
                deserialize=False,
            ):
                if stop.is_set():
                    watcher.stop()
                    break
                kind = event["type"]
                raw = event["object"]  # deserialize=False: the JSON object as the API sent it
                if kind == "BOOKMARK":
                    continue
                if kind == "ERROR":
                    break  # e.g. 410 Gone: relist
                uid = raw["metadata"]["uid"]
                if kind == "DELETED":
                    known.pop(uid, None)
                else:
                    known[uid] = raw
                deliver(kind, raw)
        # KeyError: the client's watch reads 'raw_object' of an ERROR event (410 Gone), which it only
        # sets when it deserializes; either way the answer is to list again.
        except (ApiException, OSError, ValueError, KeyError) as error:
            if stop.is_set():
                return
            log.info("watch of %s interrupted (%s): listing again", what, error)
            time.sleep(RETRY_SECONDS)
        except Exception:
            if stop.is_set():
                return
            log.exception("watch of %s failed: listing again", what)
            time.sleep(RETRY_SECONDS)


async def run(kubeconfig: Path, workdir: Path, model_load_seconds: float = 0.0) -> None:
    from kubernetes import client

    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    with claim_block() as block:
        allocator = AddressAllocator(block)
        api_client = api_client_for(kubeconfig)
        runtime = PodRuntime(api_client, allocator, workdir / "logs" / "pods", model_load_seconds)
        proxy = ServiceProxy(allocator, workdir, runtime.address_of)
        queue: asyncio.Queue[tuple[str, str, dict[str, Any]]] = asyncio.Queue()

        def deliverer(kind: str) -> Deliver:
            def deliver(event: str, obj: dict[str, Any]) -> None:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, event, obj))

            return deliver

        # Separate clients per watch thread: the kubernetes client's pool is shared otherwise.
        core: Any = client.CoreV1Api(api_client_for(kubeconfig))
        nodes_api: Any = client.CoreV1Api(api_client_for(kubeconfig))
        services_api: Any = client.CoreV1Api(api_client_for(kubeconfig))
        discovery: Any = client.DiscoveryV1Api(api_client_for(kubeconfig))
        stop = threading.Event()
        watches: Sequence[tuple[str, Callable[..., Any]]] = (
            ("node", nodes_api.list_node),
            ("pod", core.list_pod_for_all_namespaces),
            ("service", services_api.list_service_for_all_namespaces),
            ("endpointslice", discovery.list_endpoint_slice_for_all_namespaces),
        )
        threads = [
            threading.Thread(
                target=watch_forever, args=(function, deliverer(kind), stop, kind), daemon=True, name=kind
            )
            for kind, function in watches
        ]
        for thread in threads:
            thread.start()
        (workdir / READY_FILE).write_text(json.dumps({"loopbackBlock": f"127.{block}.0.0/16"}))
        log.info("data plane running on 127.%d.0.0/16", block)

        async def dispatch() -> None:
            while True:
                kind, event, obj = await queue.get()
                try:
                    if kind == "node":
                        runtime.on_node(event, obj)
                    elif kind == "pod":
                        runtime.on_pod(event, obj)
                    elif kind == "service":
                        await proxy.on_service(event, obj)
                    else:
                        proxy.on_endpoint_slice(event, obj)
                except Exception:
                    log.exception("handling %s %s failed", event, kind)

        dispatcher = asyncio.create_task(dispatch())
        await stop_requested.wait()
        log.info("stopping: killing the simulator processes")
        stop.set()
        dispatcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dispatcher
        await runtime.close()
        await proxy.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcluster.dataplane", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True, help="the cluster's directory")
    parser.add_argument(
        "--model-load-seconds",
        type=float,
        default=0.0,
        help="seconds each simulator spends loading before it is healthy (SIM_STARTUP_DELAY_S)",
    )
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    asyncio.run(run(args.kubeconfig, args.workdir, args.model_load_seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
