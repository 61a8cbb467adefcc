"""`python gateway/tests/serve.py NAME FACTORY PORT`: migrate a service's database to head
(unless NAME starts with `stub`), then serve it with uvicorn, all in one interpreter."""

import sys
from pathlib import Path

import uvicorn

from kit.migrate import main as migrate


def main(name: str, factory: str, port: int) -> None:
    if name.startswith("stub"):
        sys.path.insert(0, str(Path(__file__).parent))
    elif migrate([name]) != 0:
        raise SystemExit(f"migrating {name} failed")
    uvicorn.run(factory, factory=True, host="127.0.0.1", port=port, access_log=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
