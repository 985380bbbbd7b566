"""`deepseek-simulator` / `python -m deepseek_simulator`: serve until SIGTERM, then drain."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from deepseek_simulator.config import ConfigError, SimulatorConfig, load_config
from deepseek_simulator.logs import configure_logging
from deepseek_simulator.server import SimulatorServer

log = logging.getLogger("deepseek_simulator")

EXIT_CONFIG_ERROR = 2


async def serve(config: SimulatorConfig) -> bool:
    """Run one simulator until SIGTERM or SIGINT; return whether every request finished in time."""
    server = SimulatorServer(config)
    await server.start()
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    await stop_requested.wait()
    drained = await server.drain()
    await server.stop()
    log.info("stopped", extra={"fields": {"drained": drained}})
    return drained


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging("INFO")
    try:
        config = load_config(sys.argv[1:] if argv is None else argv, os.environ)
    except ConfigError as error:
        for message in error.messages:
            log.error(message, extra={"fields": {"kind": "config"}})
        return EXIT_CONFIG_ERROR
    configure_logging(config.log_level)
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
