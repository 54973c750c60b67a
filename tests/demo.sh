#!/usr/bin/env bash
# The demo: migrate-then-upgrade of three local kvstore nodes, then an ad-hoc downgrade of one of them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python tests/demo.py
