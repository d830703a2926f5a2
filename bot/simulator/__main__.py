"""`python -m bot.simulator`: run the simulator standalone and print its base URL and key.

    python -m bot.simulator --task-seconds 5 --port 8400

Point the bot at it with the two printed lines (`NOVITA_BASE_URL`, `NOVITA_API_KEY`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from bot.simulator.server import Simulator
from bot.simulator.tasks import SimulatorConfig


async def serve(host: str, port: int, config: SimulatorConfig) -> None:
    async with Simulator(config, host=host, port=port) as sim:
        print(f"NOVITA_BASE_URL={sim.base_url}")
        print(f"NOVITA_API_KEY={sim.api_key}")
        print("Simulating the Novita Vidu API; Ctrl-C stops it.", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bot.simulator",
        description="Run the loopback simulator of the Novita Vidu video API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--task-seconds", type=float, default=20.0)
    parser.add_argument("--api-key", default=None, help="default: a random key")
    args = parser.parse_args(argv)
    config = SimulatorConfig(task_seconds=args.task_seconds)
    if args.api_key:
        config.api_key = args.api_key
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, config))


if __name__ == "__main__":
    main()
