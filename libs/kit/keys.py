"""`python -m kit.keys DIR NAME…`: create the Ed25519 token key pairs a deployment needs."""

from __future__ import annotations

import sys
from pathlib import Path

from kit.auth import write_keypair


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m kit.keys DIR NAME [NAME …]", file=sys.stderr)
        return 2
    directory = Path(argv[0])
    for name in argv[1:]:
        write_keypair(directory, name)
        print(f"{directory / name}.pem / .pub ready")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
