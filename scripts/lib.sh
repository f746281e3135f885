# Shared helpers for the project's scripts (sourced, not executed).
# shellcheck shell=bash
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${CG_BUILD_DIR:-$REPO/build}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Packages the build, the station and the tests need (Debian 12).
BUILD_PACKAGES=(g++ cmake ninja-build ccache pkg-config git ca-certificates
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev openssl libsqlite3-dev libtomlplusplus-dev libcli11-dev
  libp11-dev libp11-kit-dev)
TEST_PACKAGES=(libgtest-dev googletest libbenchmark-dev checksec sqlite3 procps rsyslog rsyslog-openssl
  softhsm2)

# Installs the missing Debian packages among "$@" (apt-get update once, only when needed).
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Node.js and npm: Debian's packages unless a node/npm is already installed.
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
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
