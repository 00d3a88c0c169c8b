#!/usr/bin/env bash
# What can be checked of docker/ without a Docker engine: hadolint on the Dockerfile, shellcheck on
# the launch script, and that the image's pinned requirements resolve with tokzoo's (pip --dry-run,
# which asks the package index but installs nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
hadolint --config docker/hadolint.yaml docker/Dockerfile
shellcheck docker/launch.sh docker/check.sh
python -m pip install --dry-run --quiet --ignore-installed --report - --constraint docker/constraints.txt \
    ".[audio,eval]" > /tmp/tokzoo-docker-resolve.json
python - <<'PY'
import json
report = json.load(open("/tmp/tokzoo-docker-resolve.json"))
names = sorted(f"{i['metadata']['name']}=={i['metadata']['version']}" for i in report["install"])
print(f"pinned requirements resolve: {len(names)} packages")
PY
