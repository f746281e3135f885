# Shared helpers for the project's scripts (sourced, not executed).
# shellcheck shell=bash
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${CG_BUILD_DIR:-$REPO/build}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Libraries and data the build, the station and the tests need (Debian 12).
# Programs are not listed here: they are in scripts/programs.tsv.
BUILD_PACKAGES=(ca-certificates
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev libtomlplusplus-dev libcli11-dev
  libp11-dev libp11-kit-dev libargon2-dev)
TEST_PACKAGES=(libgtest-dev googletest libbenchmark-dev softhsm2)
PROGRAMS_TABLE="$REPO/scripts/programs.tsv"

# The Debian packages of the programs that GROUP… need (scripts/programs.tsv)
# and are missing, one per line.
missing_program_packages() {
  local groups=" $* "
  local program source check used pkgs p g need
  while read -r program source check used; do
    case "$program" in ''|'#'*) continue ;; esac
    need=0
    for g in ${used//,/ }; do [[ "$groups" == *" $g "* ]] && need=1; done
    [ "$need" = 1 ] || continue
    [ "${source%%:*}" = apt ] || continue  # npm: installed by ensure_node_modules
    pkgs="${source#apt:}"
    if [ "$check" = path ] && command -v "$program" >/dev/null 2>&1; then continue; fi
    for p in ${pkgs//,/ }; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
  done < "$PROGRAMS_TABLE"
}

# Installs the missing Debian packages among "$@" and those of the programs
# of the groups named with --programs (apt-get update once, only when needed):
#   ensure_packages --programs build,test -- PACKAGE…
ensure_packages() {
  local groups=""
  if [ "${1:-}" = --programs ]; then groups="${2//,/ }"; shift 2; fi
  [ "${1:-}" = -- ] && shift
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ -n "$groups" ]; then
    local p
    while read -r p; do [ -n "$p" ] && missing+=("$p"); done < <(missing_program_packages $groups | sort -u)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# npm packages of the dev CSMS, exactly as pinned by its lock file.
ensure_node_modules() {
  local dir="$REPO/tools/dev-csms"
  local stamp="$dir/node_modules/.cg-lock-stamp"
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    say "installing the dev CSMS's npm packages (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$dir/package-lock.json" "$stamp"
  fi
}

# Release build of the daemon (and the unit tests when $1 = with-tests).
build_release() {
  local testing=OFF
  [ "${1:-}" = "with-tests" ] && testing=ON
  say "building chargeguard (Release, tests=$testing) in $BUILD_DIR"
  cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=$testing >/dev/null
  ninja -C "$BUILD_DIR" -j"$(nproc)"
}
