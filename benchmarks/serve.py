"""`vidtt serve` throughput: 32 concurrent requests against the same 32 sent one at a time.

    python benchmarks/serve.py [--requests 32] [--clients 32] [--tokens 16] [--model DIR]

Starts `vidtt serve` on 127.0.0.1 (a free port) with the tiny llava-interleave-shaped model of
benchmarks/throughput.py (built offline into benchmarks/data/ unless --model is given) and its
videos, sends every request once to warm up, then the same `--requests` requests one at a time
and then from `--clients` threads at once (each generates exactly `--tokens` tokens: min =
max), and prints the requests per second of both and their ratio, with the server's command.
Every concurrent answer is checked against the one-at-a-time answer (greedy decoding).
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

QUESTIONS = ["What is happening?", "Which colours do you see?", "Describe the motion in it."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    import httpx
    from throughput import make_assets

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--model", help="a model folder or hub id (default: the tiny model)")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()

    paths, tiny = make_assets(args.videos)
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("vidtt")), "serve", "--model", args.model or str(tiny),
        "--backend", args.backend, "--frames", "8", "--max-side", "384", "--port", str(port),
        "--allowed-local-media-path", str(paths[0].parent), "--max-queue", "256",
        "--no-access-log",
    ]  # fmt: skip
    print("server:", shlex.join(command))
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        ends = time.monotonic() + 300
        while True:
            if server.poll() is not None or time.monotonic() > ends:
                raise SystemExit("vidtt serve did not start")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        bodies = [
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "video", "video": paths[n % len(paths)].name},
                            {"type": "text", "text": QUESTIONS[n % len(QUESTIONS)]},
                        ],
                    }
                ],
                "max_tokens": args.tokens,
                "min_tokens": args.tokens,
                "temperature": 0,
            }
            for n in range(args.requests)
        ]
        with httpx.Client(base_url=base, timeout=600) as client:

            def send(body: dict[str, Any]) -> str:
                response = client.post("/v1/chat/completions", json=body)
                response.raise_for_status()
                return str(response.json()["choices"][0]["message"]["content"])

            for body in bodies:  # warm up: model, frame cache, every prompt shape
                send(body)
            started = time.perf_counter()
            alone = [send(body) for body in bodies]
            sequential = time.perf_counter() - started
            started = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                together = list(pool.map(send, bodies))
            concurrent = time.perf_counter() - started
        if together != alone:
            raise SystemExit("concurrent answers differ from the one-at-a-time answers")
        n = args.requests
        print(f"one at a time: {n / sequential:.2f} requests/s ({sequential:.2f} s)")
        print(f"{args.clients} at once:  {n / concurrent:.2f} requests/s ({concurrent:.2f} s)")
        print(f"ratio: {sequential / concurrent:.2f}x")
    finally:
        server.terminate()
        server.wait(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
