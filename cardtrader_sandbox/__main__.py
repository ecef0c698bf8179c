"""``python -m cardtrader_sandbox --port PORT [--host 127.0.0.1] [--demo]`` (port 0 = pick a free one;
the first stdout line names the port actually bound)."""
from __future__ import annotations

import argparse

from .server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cardtrader_sandbox", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--demo", action="store_true", help="create one account with 100 products and print its token")
    args = parser.parse_args(argv)
    serve(args.host, args.port, demo=args.demo)


if __name__ == "__main__":
    main()
