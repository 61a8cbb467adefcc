"""Load the demo city into a running suite: `python scripts/load_demo.py --gateway URL`.

The admin key comes from `GATEWAY_BOOTSTRAP_ADMIN_KEY` (or `--admin-key-file`). Running it
again adds nothing. The read-only `demo-reader` key is written to `var/keys/demo-read.key`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from demo.generate import generate  # noqa: E402
from demo.load import Loader, LoadError  # noqa: E402
from kit.settings import DEFAULT_VAR_DIR  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--seed", type=int, default=2007)
    parser.add_argument("--year", type=int, default=2007)
    parser.add_argument("--key-file", type=Path, default=DEFAULT_VAR_DIR / "keys" / "demo-read.key")
    parser.add_argument("--admin-key-file", type=Path, default=None)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    admin_key = os.environ.get("GATEWAY_BOOTSTRAP_ADMIN_KEY", "").strip()
    if not admin_key and args.admin_key_file:
        admin_key = args.admin_key_file.read_text().strip()
    if not admin_key:
        print("set GATEWAY_BOOTSTRAP_ADMIN_KEY to the gateway's admin key", file=sys.stderr)
        return 2

    city = generate(seed=args.seed, year=args.year)
    timeout = httpx.Timeout(120.0, connect=5.0)
    headers = {"X-API-Key": admin_key}
    with httpx.Client(
        base_url=args.gateway.rstrip("/"), headers=headers, timeout=timeout
    ) as client:
        loader = Loader(client, city, key_file=args.key_file, progress=not args.quiet)
        try:
            report = loader.run()
        except (LoadError, httpx.HTTPError) as exc:
            print(f"demo loading failed: {exc}", file=sys.stderr)
            return 1
    added = ", ".join(f"{n} {name}" for name, n in report.added.items() if n) or "nothing new"
    print(f"Demo city {args.year} (seed {args.seed}) loaded in {report.seconds:.1f} s: {added}.")
    print(f"Read-only demo key ({args.key_file}): {report.reader_key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
