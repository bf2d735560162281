"""``python -m resumable_media.testing``: run the loopback GCS server until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging

from .server import serve


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m resumable_media.testing",
        description="Loopback GCS-compatible server (prints its endpoint URL first).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--root", default=None, help="object directory (default: a temp dir)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument(
        "--no-upload-md5",
        action="store_true",
        help="benchmark mode: do not compute MD5 of uploads (CRC32C is still checked)",
    )
    parser.add_argument(
        "--network",
        choices=("lan", "region", "wan"),
        help="simulate a link (latency before each response, per-connection and total caps)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    serve(args.host, args.port, args.root, upload_md5=not args.no_upload_md5, network=args.network)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
