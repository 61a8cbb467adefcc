"""`python -m kit.migrate SERVICE`: bring one service's database to the migration head.

Run once per deployment (a compose job or a Kubernetes Job), never by every replica.
"""

from __future__ import annotations

import importlib
import sys

from kit.migrations import upgrade_to_head


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m kit.migrate SERVICE   (e.g. brand_registry)", file=sys.stderr)
        return 2
    name = argv[0]
    app_module = importlib.import_module(f"{name}.app")
    settings = importlib.import_module(f"{name}.settings").Settings()
    spec = app_module.SPEC
    upgrade_to_head(spec.migrations, settings.database_url, spec.version_table)
    print(f"{name}: migrated to head")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
