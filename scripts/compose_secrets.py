"""`python scripts/compose_secrets.py DIR`: the secret files `deploy/docker-compose.yml` mounts.

The token key pairs (gateway, gateway-oauth, assessment, inspection), the gateway's admin key,
the cursor-signing secret and the PostgreSQL password. A file that exists is kept, so running
it again changes nothing and a deployment keeps its keys.

The folder is owner-only (0700); the files in it are readable (0644) because compose mounts
each file into the containers, whose unprivileged users (the apps' 10001, PostgreSQL's own)
must read it there.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "libs") not in sys.path:
    sys.path.insert(0, str(ROOT / "libs"))

from kit.auth import write_keypair  # noqa: E402

TOKEN_KEYS = ("gateway", "gateway-oauth", "assessment", "inspection")
VALUES = {
    "admin.key": lambda: "qrp_admin_" + secrets.token_urlsafe(32),
    "secret.key": lambda: secrets.token_urlsafe(48),
    "postgres-password": lambda: secrets.token_urlsafe(24),
}


def make_secrets(directory: Path) -> list[Path]:
    """Create whatever is missing in `directory`; return every secret file."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    files = []
    for name in TOKEN_KEYS:
        write_keypair(directory, name)
        files += [directory / f"{name}.pem", directory / f"{name}.pub"]
    for name, make in VALUES.items():
        path = directory / name
        if not path.exists():
            path.write_text(make() + "\n")
        files.append(path)
    for path in files:
        path.chmod(0o644)
    return files


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python scripts/compose_secrets.py DIR   (e.g. deploy/keys)", file=sys.stderr)
        return 2
    files = make_secrets(Path(argv[0]))
    print(f"{len(files)} secret files ready in {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
