#!/usr/bin/env bash
# Fails when a test starts a program other than through the two gatekeepers
# that check scripts/programs.tsv (tests/integration/lib/programs.js,
# tests/unit/programs.hpp): a program run another way could be one that no
# script installs, and would only fail on a fresh machine. Also checks that
# every row of the table names a known source and group.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
fail=0
# Node: child_process only in the gatekeeper.
while IFS= read -r f; do
  echo "FAIL $f starts programs itself (node:child_process); use tests/integration/lib/programs.js"
  fail=1
done < <(grep -rlE "require\(['\"](node:)?child_process['\"]\)" tests/integration | grep -v '^tests/integration/lib/programs.js$' || true)
# C++: no shell, popen, exec* or posix_spawn outside the gatekeeper.
while IFS= read -r hit; do
  echo "FAIL $hit: use cg::test::run_program / spawn_program (tests/unit/programs.hpp)"
  fail=1
done < <(grep -nE '(std::system|[^_a-z]system|popen|posix_spawnp?|execv[pe]?|execl[pe]?)[[:space:]]*\(' tests/unit/*.cpp tests/unit/*.hpp |
  grep -vE '^tests/unit/programs\.hpp:|Source::system\(|audit::Source::system\(|::system\(\)' || true)
# The table itself.
while read -r program source check groups; do
  case "$program" in ''|'#'*) continue ;; esac
  case "$source" in apt:?*|npm:?*) ;; *) echo "FAIL programs.tsv: $program: source must be apt:PKG[,PKG] or npm:PKG"; fail=1 ;; esac
  case "$check" in dpkg|path) ;; *) echo "FAIL programs.tsv: $program: check must be dpkg or path"; fail=1 ;; esac
  for g in ${groups//,/ }; do
    case "$g" in build|demo|test|bench) ;; *) echo "FAIL programs.tsv: $program: unknown group $g"; fail=1 ;; esac
  done
done < scripts/programs.tsv
[ "$fail" = 0 ] && echo "ok   tests start programs only through the gatekeepers of scripts/programs.tsv"
exit "$fail"
