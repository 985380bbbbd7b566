"""Traffic from inside the cluster to a DeepSeekDeployment's Service; the e2e tests run it in a Pod.

Standard library only: it runs in the simulator image, which has Python but nothing of this repository.

    python3 traffic_client.py chat URL MODEL --count N    N chat completions, one after another; prints
                                                          each response body as a JSON line
    python3 traffic_client.py load URL MODEL --workers W --seconds S
                                                          W workers sending chat completions back to back
                                                          for S seconds; prints {"ok": n, "failed": n}
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

# A connection refused right after the Service got its endpoints is kube-proxy catching up, not an error.
CONNECT_ATTEMPTS = 10
CONNECT_RETRY_SECONDS = 1.0


def chat_completion(base_url: str, model: str, max_tokens: int, timeout: float) -> dict[str, Any]:
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": max_tokens}
    ).encode()
    # S310: the URL is the test's own Service address, http://<service>:<port>, never a file: URL.
    request = urllib.request.Request(  # noqa: S310
        f"{base_url}/v1/chat/completions",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def chat_with_connect_retries(base_url: str, model: str, max_tokens: int) -> dict[str, Any]:
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return chat_completion(base_url, model, max_tokens, timeout=60)
        except urllib.error.HTTPError:
            raise  # the server answered: an HTTP error is a result, not a connection problem
        except (urllib.error.URLError, ConnectionError):
            if attempt == CONNECT_ATTEMPTS:
                raise
            time.sleep(CONNECT_RETRY_SECONDS)
    raise AssertionError("unreachable")


def run_chat(base_url: str, model: str, count: int, max_tokens: int) -> None:
    for _ in range(count):
        print(json.dumps(chat_with_connect_retries(base_url, model, max_tokens)), flush=True)


def run_load(base_url: str, model: str, workers: int, seconds: float, max_tokens: int) -> None:
    deadline = time.monotonic() + seconds
    outcomes = {"ok": 0, "failed": 0}
    lock = threading.Lock()

    def send_until_deadline() -> None:
        while time.monotonic() < deadline:
            try:
                chat_completion(base_url, model, max_tokens, timeout=120)
                outcome = "ok"
            except (urllib.error.URLError, OSError, ValueError):
                outcome = "failed"
            with lock:
                outcomes[outcome] += 1

    threads = [threading.Thread(target=send_until_deadline) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(outcomes), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["chat", "load"])
    parser.add_argument("url", help="base URL of the Service, e.g. http://r1:8080")
    parser.add_argument("model", help="served model name")
    parser.add_argument("--count", type=int, default=1, help="chat: number of requests")
    parser.add_argument("--workers", type=int, default=8, help="load: concurrent requests")
    parser.add_argument("--seconds", type=float, default=60, help="load: how long to keep sending")
    parser.add_argument("--max-tokens", type=int, default=8, help="output tokens per request")
    args = parser.parse_args(argv)
    if args.mode == "chat":
        run_chat(args.url, args.model, args.count, args.max_tokens)
    else:
        run_load(args.url, args.model, args.workers, args.seconds, args.max_tokens)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
