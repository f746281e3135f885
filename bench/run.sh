#!/usr/bin/env bash
# bench/run.sh — build with CG_BUILD_BENCH=ON, run the chargeguard benchmarks several
# times against the native load CSMS (bench/load_csms.cpp) and print a markdown table
# of the medians to stdout (progress goes to stderr). See docs/benchmarks.md.
#
# Usage (from the repository root):  bench/run.sh
# Knobs (environment):
#   CG_BENCH_RUNS=5            complete runs; every figure is the median over the runs
#   CG_BENCH_REQUESTS=10000    GetVariables per measured load round
#   CG_BENCH_INFLIGHT=1,4      load rounds: CALLs in flight (1 = strict OCPP request/response)
#   CG_BENCH_PLACEMENTS=same,split   CPU placement of the load rounds: same = station and
#                              load client pinned to CPU 0; split = client CPU 0, station CPU 1;
#                              free = unpinned (see docs/benchmarks.md for why this matters)
#   CG_BENCH_SPAWN_REPS=15     spawn -> BootNotification samples per run (fresh state dir each)
#   CG_BENCH_BUILD_DIR=build-bench   CG_BENCH_SKIP_BUILD=1 (reuse an existing build)
#   CG_BENCH_STATION=PATH      benchmark another chargeguard binary (e.g. a patched build)
#   CG_BENCH_KEEP=1            keep the scratch directory (logs, raw results)
#   CG_BENCH_AUDIT_SECONDS=0.7 seconds per audit-log append measure (3 repetitions each);
#                              CG_BENCH_AUDIT_RECORDS=200000 records in the verified log;
#                              CG_BENCH_AUDIT=0 skips the audit-log benchmark
#   CG_BENCH_TLS=0             skips the profile 3 benchmark (issue 4): TLS handshakes to the dev
#                              CSMS with the station key in PKCS#11 (SoftHSM2) / file store / memory
#                              (bench/tls_bench.cpp), and VmRSS of a station connected at profile 3
#                              (file and PKCS#11 key store) vs profile 2. Needs node, npm ci in
#                              tools/dev-csms, softhsm2-util.
#                              CG_BENCH_TLS_HANDSHAKES=200 per key kind and TLS version;
#                              CG_BENCH_TLS_RSS_REPS=3 starts of each of the three stations
#   CG_BENCH_FIRMWARE=0        skips the firmware verification benchmark (issue 11,
#                              bench/firmware_bench.cpp): verify a CG_BENCH_FIRMWARE_MIB=1024 MiB
#                              image vs `openssl dgst -sha256` (CG_BENCH_FIRMWARE_REPS=3), peak RSS growth
#   CG_BENCH_FW_DOWNLOAD=0     skips the firmware download benchmark (issue 11,
#                              bench/firmware_download_bench.cpp): a CG_BENCH_FW_DOWNLOAD_MIB=256 MiB image
#                              over loopback HTTPS into a slot (verified, fsynced) vs `curl -o FILE`
#                              (CG_BENCH_FW_DOWNLOAD_REPS=5)
#   CG_BENCH_WEB=0             skips the web UI benchmark (issue 12, bench/web_bench.cpp): the dashboard
#                              over HTTPS on loopback, logged in, vs the stylesheet of the same server
#                              (CG_BENCH_WEB_REQUESTS=2000 of each, interleaved, one keep-alive connection),
#                              then a flood of wrong logins (CG_BENCH_WEB_FLOOD_RATE=200/s from 4 addresses for
#                              CG_BENCH_WEB_FLOOD_SECONDS=10) while a simulated charge runs and an engineer logs in
#                              once a second, and the same flood from CG_BENCH_WEB_FLOOD_ADDRESSES=200 addresses
#   CG_BENCH_LOAD=0            skips the load runs and their table (e.g. CG_BENCH_LOAD=0
#                              CG_BENCH_AUDIT=0 runs only the profile 3 part)
set -euo pipefail
# What the benchmarks run is installed from scripts/programs.tsv (group bench).
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
ensure_packages --programs build,bench -- "${BUILD_PACKAGES[@]}" libbenchmark-dev softhsm2
ensure_node_modules

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${CG_BENCH_BUILD_DIR:-$REPO/build-bench}"
RUNS="${CG_BENCH_RUNS:-5}"
REQUESTS="${CG_BENCH_REQUESTS:-10000}"
PLACEMENTS="${CG_BENCH_PLACEMENTS:-same,split}"
INFLIGHT="${CG_BENCH_INFLIGHT:-1,4}"
SPAWN_REPS="${CG_BENCH_SPAWN_REPS:-15}"
STARTED=$(date +%s)

say() { printf '==> %s\n' "$*" >&2; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/cg-bench.XXXXXX")"
LOAD_PID=""
PIDS=()   # profile 3 part: cg_tls_bench, dev CSMS instances, stations (by pid)
forget_pid() { local q keep=(); for q in "${PIDS[@]}"; do [ "$q" = "$1" ] || keep+=("$q"); done; PIDS=("${keep[@]}"); }
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Only what this script started: the load CSMS (it kills the stations and echo
  # peers it spawned; they also carry PR_SET_PDEATHSIG=SIGKILL).
  if [ -n "$LOAD_PID" ] && kill -0 "$LOAD_PID" 2>/dev/null; then
    kill -TERM "$LOAD_PID" 2>/dev/null || true
    sleep 0.2
    kill -KILL "$LOAD_PID" 2>/dev/null || true
    wait "$LOAD_PID" 2>/dev/null || true
  fi
  # ... and the processes of the profile 3 part that are still running (the dev CSMS
  # that cg_tls_bench starts dies with it: PR_SET_PDEATHSIG).
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ "${CG_BENCH_KEEP:-0}" = 1 ]; then say "scratch kept in $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build
if [ "${CG_BENCH_SKIP_BUILD:-0}" != 1 ]; then
  say "building (Release, CG_BUILD_BENCH=ON) in $BUILD_DIR"
  cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DCG_BUILD_BENCH=ON >&2
  ninja -C "$BUILD_DIR" -j"$(nproc)" chargeguard cg_load_csms cg_audit_bench cg_tls_bench cg_firmware_bench cg_firmware_download_bench cg_web_bench >&2
fi
# Keep the whole command under 3 minutes: after a long (cold) build, 3 runs instead of 5.
# The profile 3 part takes 25-30 s with its defaults; after a long build it does 100
# handshakes per kind and version and 2 starts per station instead.
TLS_HANDSHAKES="${CG_BENCH_TLS_HANDSHAKES:-200}"
RSS_REPS="${CG_BENCH_TLS_RSS_REPS:-3}"
if [ -z "${CG_BENCH_RUNS:-}" ] && [ $(( $(date +%s) - STARTED )) -gt 60 ]; then
  RUNS=3
  say "the build took over a minute: $RUNS runs instead of 5 (set CG_BENCH_RUNS to insist)"
  [ -n "${CG_BENCH_TLS_HANDSHAKES:-}" ] || TLS_HANDSHAKES=100
  [ -n "${CG_BENCH_TLS_RSS_REPS:-}" ] || RSS_REPS=2
fi
BIN="${CG_BENCH_STATION:-$BUILD_DIR/chargeguard}"
LOAD="$BUILD_DIR/bench/cg_load_csms"
[ -x "$BIN" ] && [ -x "$LOAD" ] && [ -x "$BUILD_DIR/chargeguard" ] || { echo "missing $BIN or $LOAD" >&2; exit 1; }
if [ "${CG_BENCH_TLS:-1}" != 0 ]; then
  [ -x "$BUILD_DIR/bench/cg_tls_bench" ] || { echo "missing $BUILD_DIR/bench/cg_tls_bench" >&2; exit 1; }
  command -v node >/dev/null && [ -d "$REPO/tools/dev-csms/node_modules/ocpp-rpc" ] &&
    command -v softhsm2-util >/dev/null && [ -f /usr/lib/softhsm/libsofthsm2.so ] || {
    echo "the profile 3 benchmark needs node, tools/dev-csms/node_modules (npm ci there; scripts/demo.sh does it)" \
      "and SoftHSM2 (softhsm2-util, /usr/lib/softhsm/libsofthsm2.so); CG_BENCH_TLS=0 skips it" >&2
    exit 1
  }
fi

# ---- scratch PKI and password (0600, as the station wants)
"$BUILD_DIR/chargeguard" pki dev-init --out "$TMP/pki" >/dev/null || { echo "chargeguard pki dev-init failed" >&2; exit 1; }
(umask 077; printf 'bench-%s\n' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" > "$TMP/password")

[ "${CG_BENCH_LOAD:-1}" != 0 ] || RUNS=0
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
say "load average before: $LOAD_BEFORE; $RUNS runs x ($SPAWN_REPS spawns, $REQUESTS requests per round, in flight $INFLIGHT, placements $PLACEMENTS)"

# ---- runs
for r in $(seq 1 "$RUNS"); do
  say "run $r/$RUNS"
  "$LOAD" --station "$BIN" --pki "$TMP/pki" --work "$TMP/work-$r" --password-file "$TMP/password" \
    --evse-count 2 --requests "$REQUESTS" --inflight "$INFLIGHT" --placements "$PLACEMENTS" \
    --spawn-reps "$SPAWN_REPS" \
    > "$TMP/run-$r.txt" 2> "$TMP/run-$r.err" &
  LOAD_PID=$!
  if ! wait "$LOAD_PID"; then
    LOAD_PID=""
    echo "run $r failed:" >&2
    cat "$TMP/run-$r.err" >&2
    for f in "$TMP/work-$r"/*.log; do [ -s "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
    exit 1
  fi
  LOAD_PID=""
  rm -rf "$TMP/work-$r"
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- audit log (bench/audit_bench.cpp): in the scratch directory, i.e. on the file
# system of ${TMPDIR:-/tmp} (fdatasync cost depends on it; here / = /work = /tmp, ext4)
declare -A AUD=()
if [ "${CG_BENCH_AUDIT:-1}" != 0 ]; then
  say "audit log benchmark (in $TMP, $(df -PT "$TMP" | awk 'NR == 2 { print $1 " " $2 }'))"
  "$BUILD_DIR/bench/cg_audit_bench" --dir "$TMP" --reps 3 --seconds "${CG_BENCH_AUDIT_SECONDS:-0.7}" \
    --verify-records "${CG_BENCH_AUDIT_RECORDS:-200000}" > "$TMP/audit.txt" 2> "$TMP/audit.err" \
    || { echo "audit benchmark failed:" >&2; cat "$TMP/audit.err" >&2; exit 1; }
  while read -r k v; do AUD[$k]=$v; done < "$TMP/audit.txt"
fi

# ---- firmware verification (bench/firmware_bench.cpp): a 1 GiB image in the scratch directory
declare -A FW=()
if [ "${CG_BENCH_FIRMWARE:-1}" != 0 ]; then
  say "firmware verification benchmark (${CG_BENCH_FIRMWARE_MIB:-1024} MiB image in $TMP)"
  "$BUILD_DIR/bench/cg_firmware_bench" --dir "$TMP" --size-mib "${CG_BENCH_FIRMWARE_MIB:-1024}" \
    --reps "${CG_BENCH_FIRMWARE_REPS:-3}" > "$TMP/fw.txt" 2> "$TMP/fw.err" \
    || { echo "firmware benchmark failed:" >&2; cat "$TMP/fw.err" >&2; exit 1; }
  while read -r k v; do FW[$k]=$v; done < "$TMP/fw.txt"
fi

# ---- firmware download (bench/firmware_download_bench.cpp): HTTPS on loopback into a slot vs curl
declare -A DL=()
if [ "${CG_BENCH_FW_DOWNLOAD:-1}" != 0 ]; then
  say "firmware download benchmark (${CG_BENCH_FW_DOWNLOAD_MIB:-256} MiB image in $TMP)"
  "$BUILD_DIR/bench/cg_firmware_download_bench" --dir "$TMP" --size-mib "${CG_BENCH_FW_DOWNLOAD_MIB:-256}" \
    --reps "${CG_BENCH_FW_DOWNLOAD_REPS:-5}" > "$TMP/dl.txt" 2> "$TMP/dl.err" \
    || { echo "firmware download benchmark failed:" >&2; cat "$TMP/dl.err" >&2; exit 1; }
  while read -r k v; do DL[$k]=$v; done < "$TMP/dl.txt"
fi

# ---- web UI (bench/web_bench.cpp): dashboard vs a static file of the same HTTPS server
declare -A WEB=()
if [ "${CG_BENCH_WEB:-1}" != 0 ]; then
  say "web UI benchmark (${CG_BENCH_WEB_REQUESTS:-2000} dashboard and stylesheet requests)"
  "$BUILD_DIR/bench/cg_web_bench" --station "$BIN" --dir "$TMP" --requests "${CG_BENCH_WEB_REQUESTS:-2000}" \
    --flood-seconds "${CG_BENCH_WEB_FLOOD_SECONDS:-10}" --flood-rate "${CG_BENCH_WEB_FLOOD_RATE:-200}" \
    > "$TMP/web.txt" 2> "$TMP/web.err" \
    || { echo "web benchmark failed:" >&2; cat "$TMP/web.err" >&2; exit 1; }
  while read -r k v; do WEB[$k]=$v; done < "$TMP/web.txt"
  # The same flood from many addresses (each locked only after its own 6 failures: the hashing queue holds).
  say "web UI flood from ${CG_BENCH_WEB_FLOOD_ADDRESSES:-200} addresses"
  "$BUILD_DIR/bench/cg_web_bench" --station "$BIN" --dir "$TMP" --requests 0 \
    --flood-seconds "${CG_BENCH_WEB_FLOOD_SECONDS:-10}" --flood-rate "${CG_BENCH_WEB_FLOOD_RATE:-200}" \
    --flood-addresses "${CG_BENCH_WEB_FLOOD_ADDRESSES:-200}" > "$TMP/web-many.txt" 2> "$TMP/web.err" \
    || { echo "web benchmark (many addresses) failed:" >&2; cat "$TMP/web.err" >&2; exit 1; }
  while read -r k v; do WEB[many.$k]=$v; done < "$TMP/web-many.txt"
fi

# ---- binary size
strip -o "$TMP/chargeguard.stripped" "$BIN"
SIZE_UNSTRIPPED=$(stat -c %s "$BIN")
SIZE_STRIPPED=$(stat -c %s "$TMP/chargeguard.stripped")

# ---- medians over the runs: one "key value" per line
# stdin: "key value" lines (a key repeated once per run); stdout: "key median min max"
medians() {
  awk '
  { n[$1]++; v[$1, n[$1]] = $2 + 0 }
  END {
    for (k in n) {
      c = n[k]
      for (i = 1; i <= c; i++) a[i] = v[k, i]
      for (i = 2; i <= c; i++) { x = a[i]; j = i - 1; while (j >= 1 && a[j] > x) { a[j + 1] = a[j]; j-- } a[j + 1] = x }
      med = (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
      printf "%s %.6g %.6g %.6g\n", k, med, a[1], a[c]
    }
  }' | sort
}
{ cat "$TMP"/run-*.txt 2>/dev/null || true; } | medians > "$TMP/medians.txt"

# ---- profile 3 (issue 4): TLS handshakes per key kind (bench/tls_bench.cpp, which starts its
# own dev CSMS), then VmRSS of a real station connected at profile 3 (file / PKCS#11 key store)
# and at profile 2 (the same-run baseline), each against the dev CSMS (tools/dev-csms).
declare -A TLS=() P3=()
if [ "${CG_BENCH_TLS:-1}" != 0 ]; then
  P3_LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
  say "profile 3: TLS handshakes to the dev CSMS, $TLS_HANDSHAKES per key kind (memory, file, PKCS#11) and TLS version"
  mkdir -m 700 "$TMP/tls"
  "$BUILD_DIR/bench/cg_tls_bench" --dir "$TMP/tls" --csms "$REPO/tools/dev-csms/csms.js" \
    --handshakes "$TLS_HANDSHAKES" > "$TMP/tls.txt" 2> "$TMP/tls.err" &
  PIDS+=($!)
  wait "${PIDS[-1]}" || { echo "TLS handshake benchmark failed:" >&2; cat "$TMP/tls.err" >&2; exit 1; }
  forget_pid "${PIDS[-1]}"
  while read -r k v; do TLS[$k]=$v; done < "$TMP/tls.txt"

  say "profile 3: VmRSS of a connected station (profile 3 file / PKCS#11 key store, profile 2), $RSS_REPS starts each"
  P3_ORG="Bench CPO"
  # A dev CSMS on a free port; LOG first, then its extra arguments. Sets CSMS_URL.
  start_csms() {
    local log=$1; shift
    node "$REPO/tools/dev-csms/csms.js" --host 127.0.0.1 --port 0 --cert "$TMP/pki/csms-server.pem" \
      --key "$TMP/pki/csms-server.key" "$@" > "$log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do grep -q 'listening on' "$log" && break; sleep 0.1; done
    CSMS_URL=$(sed -n 's/.*listening on \(wss:[^ ]*\).*/\1/p' "$log" | head -1)
    [ -n "$CSMS_URL" ] || { cat "$log" >&2; echo "the dev CSMS did not start" >&2; exit 1; }
  }
  start_csms "$TMP/csms-p3.log" --ca "$TMP/pki/operator-root-ca.pem" --require-client-cert \
    --organization "$P3_ORG" --station BENCH-P3-FILE=SN-BENCH-P3-FILE --station BENCH-P3-P11=SN-BENCH-P3-P11
  URL_P3=$CSMS_URL
  start_csms "$TMP/csms-p2.log" --password-file "$TMP/password"
  URL_P2=$CSMS_URL

  # SoftHSM2 token for the PKCS#11 station: random PINs, PIN file 0600.
  mkdir -p -m 700 "$TMP/softhsm/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$TMP/softhsm/tokens" \
    > "$TMP/softhsm/softhsm2.conf"
  HSM_PIN=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
  SOFTHSM2_CONF="$TMP/softhsm/softhsm2.conf" softhsm2-util --init-token --free --label cg-bench-rss \
    --so-pin "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" --pin "$HSM_PIN" > "$TMP/softhsm/init.log" 2>&1 \
    || { cat "$TMP/softhsm/init.log" >&2; exit 1; }
  (umask 077; printf '%s\n' "$HSM_PIN" > "$TMP/softhsm/pin")
  unset HSM_PIN

  # One configuration per kind (docs/configuration.md); p3 kinds provisioned by the dev operator CA.
  P3_KINDS=(p2 p3file p3p11)
  declare -A P3_ID=([p2]=BENCH-P2 [p3file]=BENCH-P3-FILE [p3p11]=BENCH-P3-P11)
  for k in "${P3_KINDS[@]}"; do
    d="$TMP/rss-$k"; mkdir -m 700 "$d"
    {
      printf '[station]\nidentity = "%s"\nserial = "SN-%s"\norganization = "%s"\nstate_dir = "%s/state"\n' \
        "${P3_ID[$k]}" "${P3_ID[$k]}" "$P3_ORG" "$d"
      if [ "$k" = p2 ]; then
        printf '[csms]\nurl = "%s"\nsecurity_profile = 2\nca_file = "%s"\npassword_file = "%s"\n' \
          "$URL_P2" "$TMP/pki/csms-root-ca.pem" "$TMP/password"
      else
        printf '[csms]\nurl = "%s"\nsecurity_profile = 3\nca_file = "%s"\nclient_ca_file = "%s"\n' \
          "$URL_P3" "$TMP/pki/csms-root-ca.pem" "$TMP/pki/operator-root-ca.pem"
      fi
      [ "$k" != p3p11 ] || printf '[key_store]\nbackend = "pkcs11"\ntoken_label = "cg-bench-rss"\npin_file = "%s"\n' \
        "$TMP/softhsm/pin"
    } > "$d/station.toml"
    if [ "$k" != p2 ]; then
      SOFTHSM2_CONF="$TMP/softhsm/softhsm2.conf" "$BIN" pki provision --config "$d/station.toml" \
        --ca-cert "$TMP/pki/operator-root-ca.pem" --ca-key "$TMP/pki/operator-root-ca.key" > "$d/provision.log" 2>&1 \
        || { echo "pki provision ($k) failed:" >&2; cat "$d/provision.log" >&2; exit 1; }
    fi
  done

  # Start, wait for "online": true (BootNotification accepted), 2 s idle as the load
  # runs do, read /proc/PID/status and smaps_rollup, stop. Kinds rotated per repetition.
  rss_once() {
    local k=$1 d="$TMP/rss-$1" pid ok=0
    SOFTHSM2_CONF="$TMP/softhsm/softhsm2.conf" "$BIN" run --config "$d/station.toml" --evse-count 2 \
      --log-level warn >> "$d/station.log" 2>&1 &
    pid=$!; PIDS+=("$pid")
    for _ in $(seq 300); do
      kill -0 "$pid" 2>/dev/null || break
      if "$BIN" sim --state-dir "$d/state" status 2>/dev/null | grep -Eq '"online": ?true'; then ok=1; break; fi
      sleep 0.05
    done
    if [ "$ok" != 1 ]; then
      echo "station $k did not come online; its log and the CSMS logs:" >&2
      tail -20 "$d/station.log" "$TMP"/csms-p*.log >&2
      exit 1
    fi
    sleep 2
    awk -v p="p3.$k." '/^(VmRSS|VmHWM|RssAnon|RssFile):/ { print p tolower(substr($1, 1, length($1) - 1)) "_kb " $2 }' \
      "/proc/$pid/status" >> "$TMP/p3.txt"
    awk -v p="p3.$k." '/^Pss:/ { print p "pss_kb " $2 }' "/proc/$pid/smaps_rollup" >> "$TMP/p3.txt"
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
  }
  for r in $(seq 1 "$RSS_REPS"); do
    for j in 0 1 2; do rss_once "${P3_KINDS[$(( (r + j) % 3 ))]}"; done
  done
  # The profile each station really used, as the CSMS saw it.
  P3_SEEN="p2: $(grep -c '== BENCH-P2 connected (profile 2' "$TMP/csms-p2.log"), p3 file: $(grep -c '== BENCH-P3-FILE connected (profile 3' "$TMP/csms-p3.log"), p3 PKCS#11: $(grep -c '== BENCH-P3-P11 connected (profile 3' "$TMP/csms-p3.log") connections"
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
  medians < "$TMP/p3.txt" > "$TMP/p3-medians.txt"
  while read -r k v lo hi; do P3[$k]=$v; P3[$k.min]=$lo; P3[$k.max]=$hi; done < "$TMP/p3-medians.txt"
  P3_LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
fi


declare -A MED MIN MAX
while read -r k v lo hi; do MED[$k]=$v; MIN[$k]=$lo; MAX[$k]=$hi; done < "$TMP/medians.txt"
m() { echo "${MED[$1]:-nan}"; }
f() { awk -v x="$1" -v d="${2:-1}" 'BEGIN { printf "%.*f", d, x }'; }        # fixed decimals
mb() { awk -v x="$1" 'BEGIN { printf "%.1f MB", x / 1024 }'; }              # kB -> MB
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "–"; else printf "%.2f×", a / b }'; }
rng() { awk -v lo="${MIN[$1]:-0}" -v hi="${MAX[$1]:-0}" -v s="${2:-1}" -v d="${3:-1}" 'BEGIN { printf "%.*f–%.*f", d, lo / s, d, hi / s }'; }
verdict() { awk -v x="$1" -v op="$2" -v g="$3" 'BEGIN { ok = (op == "<=") ? (x <= g) : (x >= g); print ok ? "met" : "**missed**" }'; }

RSS=$(m mem.station.rss_kb); ANON=$(m mem.station.rss_anon_kb)
BOOT=$(m spawn.station.boot_ms.median)
IFS=',' read -ra WINDOWS <<< "$INFLIGHT"
IFS=',' read -ra PLACES <<< "$PLACEMENTS"

echo "## chargeguard benchmarks — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average $LOAD_BEFORE before / $LOAD_AFTER after"
if [ "$RUNS" -gt 0 ]; then
cat <<EOF

Median of $RUNS runs (range over the runs in brackets). Station: \`chargeguard run\`, security profile 2
(TLS 1.3 + Basic auth), 2 EVSEs, \`--log-level warn\`. Baseline peer: \`cg_load_csms --echo-peer\`, a minimal
Beast/OpenSSL client over the same TLS + WebSocket stack answering each GetVariables with a precomputed CALLRESULT.

| Measure | Goal | chargeguard | Baseline | chargeguard / baseline | Verdict |
|---|---|---|---|---|---|
| Steady-state VmRSS (connected, booted, 2 EVSEs, 2 s idle) | ≤ 9 MB | $(mb "$RSS") [$(rng mem.station.rss_kb 1024)] | $(mb "$(m mem.echo.rss_kb)") echo peer | $(ratio "$RSS" "$(m mem.echo.rss_kb)") | $(verdict "$RSS" "<=" 9216) |
| of which RssAnon | ≤ 2 MB | $(mb "$ANON") [$(rng mem.station.rss_anon_kb 1024)] | $(mb "$(m mem.echo.rss_anon_kb)") | $(ratio "$ANON" "$(m mem.echo.rss_anon_kb)") | $(verdict "$ANON" "<=" 2048) |
| RssFile / Pss (information) | – | $(mb "$(m mem.station.rss_file_kb)") / $(mb "$(m mem.station.pss_kb)") | $(mb "$(m mem.echo.rss_file_kb)") / $(mb "$(m mem.echo.pss_kb)") | – | – |
| VmRSS / RssAnon after the load rounds | – | $(mb "$(m mem.station.rss_after_load_kb)") / $(mb "$(m mem.station.rss_anon_after_load_kb)") | $(mb "$(m mem.echo.rss_after_load_kb)") / $(mb "$(m mem.echo.rss_anon_after_load_kb)") | – | – |
| Spawn → BootNotification at the CSMS, median | ≤ 30 ms | $(f "$BOOT") ms [$(rng spawn.station.boot_ms.median)] | $(f "$(m spawn.echo.boot_ms.median)") ms echo peer | $(ratio "$BOOT" "$(m spawn.echo.boot_ms.median)") | $(verdict "$BOOT" "<=" 30) |
| Spawn → BootNotification, p90 | – | $(f "$(m spawn.station.boot_ms.p90)") ms | $(f "$(m spawn.echo.boot_ms.p90)") ms | $(ratio "$(m spawn.station.boot_ms.p90)" "$(m spawn.echo.boot_ms.p90)") | – |
| … exec → TCP connect / TLS handshake / WS upgrade / → Boot | – | $(f "$(m spawn.station.connect_ms.median)") / $(f "$(m spawn.station.tls_ms.median)") / $(f "$(m spawn.station.upgrade_ms.median)" 2) / $(f "$(m spawn.station.ws_to_boot_ms.median)" 2) ms | $(f "$(m spawn.echo.connect_ms.median)") / $(f "$(m spawn.echo.tls_ms.median)") ms | – | – |
| Spawn baselines: \`/bin/true\` exit / \`chargeguard --version\` exit / \`openssl s_client\` TLS done | – | – | $(f "$(m spawn.true.exit_ms.median)") / $(f "$(m spawn.version.exit_ms.median)") / $(f "$(m spawn.sclient.tls_ms.median)") ms | $(ratio "$BOOT" "$(m spawn.sclient.tls_ms.median)") vs s_client | – |
| Binary size, stripped (\`strip -o\`) | ≤ 6 MB | $(awk -v x="$SIZE_STRIPPED" 'BEGIN { printf "%.2f MB", x / 1048576 }') ($SIZE_STRIPPED B) | unstripped $(awk -v x="$SIZE_UNSTRIPPED" 'BEGIN { printf "%.2f MB", x / 1048576 }') | $(ratio "$SIZE_STRIPPED" "$SIZE_UNSTRIPPED") | $(verdict "$SIZE_STRIPPED" "<=" 6291456) |
EOF
for P in "${PLACES[@]}"; do
  case $P in
    same) PD="station and load client pinned to the same CPU";;
    split) PD="station on CPU 1, load client on CPU 0";;
    *) PD="unpinned (scheduler decides)";;
  esac
  S1="load.station.$P.w1"; E1="load.echo.$P.w1"
  CPU=$(m $S1.cpu_sched_us_per_req); RPS=$(m $S1.req_per_s); P99=$(m $S1.lat_p99_us)
  cat <<ROWS
| **GetVariables over TLS, $PD** | | | | | |
| Station CPU per GetVariables (schedstat, all threads), 1 in flight | ≤ 30 µs | $(f "$CPU") µs [$(rng $S1.cpu_sched_us_per_req)] | $(f "$(m $E1.cpu_sched_us_per_req)") µs | $(ratio "$CPU" "$(m $E1.cpu_sched_us_per_req)") | $(verdict "$CPU" "<=" 30) |
| … same from /proc/PID/stat utime+stime (10 ms ticks) | – | $(f "$(m $S1.cpu_us_per_req)") µs | $(f "$(m $E1.cpu_us_per_req)") µs | $(ratio "$(m $S1.cpu_us_per_req)" "$(m $E1.cpu_us_per_req)") | – |
| Round trips, 1 in flight | ≥ 10,000/s | $(f "$RPS" 0)/s [$(rng $S1.req_per_s 1 0)] | $(f "$(m $E1.req_per_s)" 0)/s | $(ratio "$RPS" "$(m $E1.req_per_s)") | $(verdict "$RPS" ">=" 10000) |
| … latency p99 | ≤ 2 ms | $(f "$P99" 0) µs [$(rng $S1.lat_p99_us 1 0)] | $(f "$(m $E1.lat_p99_us)" 0) µs | $(ratio "$P99" "$(m $E1.lat_p99_us)") | $(verdict "$P99" "<=" 2000) |
| … latency p50 / max | – | $(f "$(m $S1.lat_p50_us)" 0) / $(f "$(m $S1.lat_max_us)" 0) µs | $(f "$(m $E1.lat_p50_us)" 0) / $(f "$(m $E1.lat_max_us)" 0) µs | $(ratio "$(m $S1.lat_p50_us)" "$(m $E1.lat_p50_us)") (p50) | – |
| … load client CPU per request | – | $(f "$(m $S1.client_cpu_us_per_req)") µs | $(f "$(m $E1.client_cpu_us_per_req)") µs | – | – |
ROWS
  for w in "${WINDOWS[@]}"; do
    [ "$w" = 1 ] && continue
    S="load.station.$P.w$w"; E="load.echo.$P.w$w"
    echo "| $w in flight: throughput / p99 / max / station CPU per request | – | $(f "$(m $S.req_per_s)" 0)/s / $(f "$(m $S.lat_p99_us)" 0) µs / $(f "$(m $S.lat_max_us)" 0) µs / $(f "$(m $S.cpu_sched_us_per_req)") µs | $(f "$(m $E.req_per_s)" 0)/s / $(f "$(m $E.lat_p99_us)" 0) µs / $(f "$(m $E.lat_max_us)" 0) µs / $(f "$(m $E.cpu_sched_us_per_req)") µs | $(ratio "$(m $S.req_per_s)" "$(m $E.req_per_s)") (throughput) | – |"
  done
done
fi
if [ "${#AUD[@]}" -gt 0 ]; then
  a() { echo "${AUD[audit.$1]:-nan}"; }
  cat <<EOF

### Audit log (\`cg_audit_bench\`, median of 3 repetitions, $(a line_bytes)-byte records, scratch dir on $(df -PT "$TMP" | awk 'NR == 2 { print $2 }'))

| Measure | Goal | AuditLog | Baseline | AuditLog / baseline | Verdict |
|---|---|---|---|---|---|
| Durable appends, \`record()\` in a loop | ≥ 2,000/s | $(f "$(a single.per_s)" 0)/s | $(f "$(a single.base_per_s)" 0)/s write+fdatasync of one line | $(ratio "$(a single.per_s)" "$(a single.base_per_s)") | $(verdict "$(a single.per_s)" ">=" 2000) |
| Batched appends, \`record_batch()\` of 100 | ≥ 20,000/s | $(f "$(a batch.per_s)" 0)/s | $(f "$(a batch.base_per_s)" 0)/s write of 100 lines + 1 fdatasync | $(ratio "$(a batch.per_s)" "$(a batch.base_per_s)") | $(verdict "$(a batch.per_s)" ">=" 20000) |
| Chain + MAC verification, \`verify_file(log, &key)\`, $(f "$(a verify.file_mb)") MB | ≥ 1,000,000 rec/s | $(f "$(a verify.key.rec_per_s)" 0) rec/s, $(f "$(a verify.key.mb_per_s)" 0) MB/s | $(f "$(a verify.sha256_file.rec_per_s)" 0) rec/s, $(f "$(a verify.sha256_file.mb_per_s)" 0) MB/s SHA-256 of the file (\`openssl dgst -sha256\`: $(f "$(a verify.openssl_dgst.mb_per_s)" 0) MB/s) | $(ratio "$(a verify.key.rec_per_s)" "$(a verify.sha256_file.rec_per_s)") | $(verdict "$(a verify.key.rec_per_s)" ">=" 1000000) |
| … per CPU second of the process (less sensitive to other tenants) | – | $(f "$(a verify.key.cpu_rec_per_s)" 0) rec/s | $(f "$(a verify.sha256_file.cpu_rec_per_s)" 0) rec/s | $(ratio "$(a verify.key.cpu_rec_per_s)" "$(a verify.sha256_file.cpu_rec_per_s)") | – |
| … baseline 2: SHA-256 + HMAC per record body, precomputed HMAC states (the crypto the verifier cannot avoid) | – | – | $(f "$(a verify.crypto_per_record.rec_per_s)" 0) rec/s, $(f "$(a verify.crypto_per_record.mb_per_s)" 0) MB/s | $(ratio "$(a verify.key.rec_per_s)" "$(a verify.crypto_per_record.rec_per_s)") | – |
| … chain only, \`verify_file(log, nullptr)\` / filling the log (batches of 1,000, CPU bound) | – | $(f "$(a verify.nokey.rec_per_s)" 0) rec/s / $(f "$(a fill.per_s)" 0) rec/s | – | – | – |
EOF
fi
if [ "${#FW[@]}" -gt 0 ]; then
  w() { echo "${FW[fw.$1]:-nan}"; }
  cat <<EOF

### Firmware verification (issue 11, \`cg_firmware_bench\`, median of ${CG_BENCH_FIRMWARE_REPS:-3} interleaved repetitions, page cache warm)

| Measure | Goal | chargeguard | Baseline | chargeguard / baseline | Verdict |
|---|---|---|---|---|---|
| Verify a $(f "$(w image_mib)" 0) MiB image: certificate + whole-file SHA-256 + payload SHA-256 + ECDSA P-256 (\`verify_file\`) | ≥ 0.95× \`openssl dgst -sha256\` | $(f "$(w verify.mib_per_s)" 0) MiB/s ($(f "$(w verify.s)" 2) s) | $(f "$(w openssl_dgst.mib_per_s)" 0) MiB/s ($(f "$(w openssl_dgst.s)" 2) s) \`openssl dgst -sha256\` | $(f "$(w verify.ratio)" 2)× | $(verdict "$(w verify.ratio)" ">=" 0.95) |
| Peak RSS growth during the verification (VmHWM after − VmRSS before) | ≤ 1 MB | $(f "$(w verify.peak_rss_growth_kb)" 0) kB | – | – | $(verdict "$(w verify.peak_rss_growth_kb)" "<=" 1024) |
EOF
fi
if [ "${#DL[@]}" -gt 0 ]; then
  d() { echo "${DL[dl.$1]:-nan}"; }
  cat <<EOF

### Firmware download (issue 11, \`cg_firmware_download_bench\`, median of ${CG_BENCH_FW_DOWNLOAD_REPS:-5} interleaved repetitions)

Same HTTPS server for both (a thread of the benchmark: OpenSSL, TLS 1.3, P-256, 127.0.0.1). chargeguard: \`HttpsGet\` →
\`SlotWriter\` (whole-file SHA-256 and payload SHA-256 on two worker threads, the write on a third, ECDSA P-256
verification, fsync, rename: the image is verified and durable when the time stops). Baseline: \`curl -sS --cacert
ROOT -o FILE\` (no verification, no fsync).

| Measure | Goal | chargeguard | Baseline | chargeguard / baseline | Verdict |
|---|---|---|---|---|---|
| Download + verify + write a $(f "$(d image_mib)" 0) MiB image | ≤ 1.3× \`curl\` | $(f "$(d ours.s)" 2) s ($(f "$(d ours.mib_per_s)" 0) MiB/s) | $(f "$(d curl.s)" 2) s ($(f "$(d curl.mib_per_s)" 0) MiB/s) | $(f "$(d ratio)" 2)× | $(verdict "$(d ratio)" "<=" 1.3) |
EOF
fi
if [ "${#WEB[@]}" -gt 0 ]; then
  wb() { echo "${WEB[web.$1]:-nan}"; }
  cat <<EOF

### Web UI (issue 12, \`cg_web_bench\`, $(wb requests) requests of each, interleaved on one keep-alive HTTPS connection, logged in)

| Measure | Goal | chargeguard | Baseline | chargeguard / baseline | Verdict |
|---|---|---|---|---|---|
| Dashboard round trip p99 (session check, policy, status, rendering) | – | $(f "$(wb dashboard.p99_us)" 0) µs (p50 $(f "$(wb dashboard.p50_us)" 0) µs) | $(f "$(wb static.p99_us)" 0) µs (p50 $(f "$(wb static.p50_us)" 0) µs) the stylesheet, same server | $(f "$(wb p99_ratio)" 2)× | – |
| Dashboard weight with its stylesheet | ≤ 100 KB | $(f "$(wb dashboard.total_kb)" 1) KB | – | – | $(verdict "$(wb dashboard.total_kb)" "<=" 100) |
EOF
  fl() { echo "${WEB[flood.$1]:-nan}"; }
  fm() { echo "${WEB[many.flood.$1]:-nan}"; }
  good() { echo "$(( $1 - $2 )) of $1"; }
  max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
  cat <<EOF

Flood of wrong logins with unknown user names for $(fl seconds) s at a target of $(fl target_rate)/s while a simulated
charge runs (EVSE 1, 16 A, meter values every $(fl meter_interval_ms) ms) and an engineer logs in correctly from
another address once a second. $(fl addresses) addresses: $(fl sent) sent ($(f "$(fl rate)" 0)/s), 401 $(fl status_401),
429 (locked) ${WEB[flood.status_429]:-0}, 503 (busy) ${WEB[flood.status_503]:-0}, no answer ${WEB[flood.status_0]:-0};
$(fm addresses) addresses (at most 32 waiting at once): $(fm sent) sent ($(f "$(fm rate)" 0)/s), 401 $(fm status_401),
429 ${WEB[many.flood.status_429]:-0}, 503 ${WEB[many.flood.status_503]:-0}, no answer ${WEB[many.flood.status_0]:-0}.

| Measure during the flood | Goal | $(fl addresses) addresses | $(fm addresses) addresses | Verdict |
|---|---|---|---|---|
| Control-loop periods missed | 0 | $(fl loop_overruns) of $(fl loop_ticks) | $(fm loop_overruns) of $(fm loop_ticks) | $(verdict "$(( $(fl loop_overruns) + $(fm loop_overruns) ))" "<=" 0) |
| Largest gap between periodic meter values | ≤ interval + 100 ms | $(f "$(fl meter_gap_max_ms)" 0) ms ($(fl meter_values) values) | $(f "$(fm meter_gap_max_ms)" 0) ms ($(fm meter_values) values) | $(verdict "$(max "$(fl meter_gap_max_ms)" "$(fm meter_gap_max_ms)")" "<=" 1100) |
| The engineer's correct logins | all succeed | $(good "$(fl good_logins)" "$(fl good_failures)"), p50 $(f "$(fl good_p50_ms)" 0) ms, max $(f "$(fl good_max_ms)" 0) ms | $(good "$(fm good_logins)" "$(fm good_failures)"), p50 $(f "$(fm good_p50_ms)" 0) ms, max $(f "$(fm good_max_ms)" 0) ms | $(verdict "$(( $(fl good_failures) + $(fm good_failures) ))" "<=" 0) |
| Station RSS before / peak | growth ≤ 25 MB | $(f "$(fl rss_before_kb)" 0) / $(f "$(fl rss_peak_kb)" 0) kB | $(f "$(fm rss_before_kb)" 0) / $(f "$(fm rss_peak_kb)" 0) kB | $(verdict "$(max "$(( $(fl rss_peak_kb) - $(fl rss_before_kb) ))" "$(( $(fm rss_peak_kb) - $(fm rss_before_kb) ))")" "<=" 25600) |
EOF
fi
if [ "${#TLS[@]}" -gt 0 ]; then
  t() { echo "${TLS[tls.$1]:-nan}"; }
  p() { echo "${P3[p3.$1]:-nan}"; }
  # one row: LABEL KEY-SUFFIX UNIT DECIMALS, for the kinds p11 / file / mem
  trow() {
    local a b c
    a=$(t "$1.p11.$2"); b=$(t "$1.file.$2"); c=$(t "$1.mem.$2")
    echo "| $3 | $(f "$a" "$5") $4 | $(f "$b" "$5") $4 | $(f "$c" "$5") $4 | $(ratio "$a" "$c") | $(ratio "$b" "$c") |"
  }
  prow() {
    local a b c
    a=$(p "p3p11.$1"); b=$(p "p3file.$1"); c=$(p "p2.$1")
    echo "| $2 | $(mb "$a") [$(awk -v x="${P3[p3.p3p11.$1.min]:-0}" -v y="${P3[p3.p3p11.$1.max]:-0}" 'BEGIN { printf "%.1f–%.1f", x / 1024, y / 1024 }')] | $(mb "$b") | $(mb "$c") | $(ratio "$a" "$c") | $(ratio "$b" "$c") |"
  }
  cat <<EOF

### Security profile 3 (issue 4): handshakes and memory — load average $P3_LOAD_BEFORE before / $P3_LOAD_AFTER after

Handshakes: \`cg_tls_bench\`, $(t handshakes) full handshakes per key kind and TLS version (after 10 warm-up rounds) to the
dev CSMS (\`tools/dev-csms\`, Node, \`--require-client-cert\`) over loopback, kinds interleaved in rounds; client
context = \`configure_tls_client\` + \`use_client_identity\`, P-256 station key, no resumption. Baseline: the same
client with an in-memory OpenSSL key (\`EVP_EC_gen\`), same run. Peer answered our close_notify with its own in
$(t peer_close_notify) of $(( $(t peer_close_notify) + $(t peer_eof) )) handshakes.

| Measure | PKCS#11 key (SoftHSM2) | File key store | Baseline: in-memory key | PKCS#11 / baseline | File / baseline |
|---|---|---|---|---|---|
$(trow v13 total_ms.median "TLS 1.3: connect + handshake + shutdown, median" ms 2)
$(trow v13 total_ms.p90 "… p90" ms 2)
$(trow v13 handshake_ms.median "… connect + SSL_connect only, median" ms 2)
$(trow v13 client_cpu_ms.median "… CPU time of the client per handshake, median" ms 2)
$(trow v12 total_ms.median "TLS 1.2: connect + handshake + shutdown, median" ms 2)
$(trow v12 total_ms.p90 "… p90" ms 2)
$(trow v12 handshake_ms.median "… connect + SSL_connect only, median" ms 2)
$(trow v12 client_cpu_ms.median "… CPU time of the client per handshake, median" ms 2)
$(trow sign us.median "Client signature alone (EVP_DigestSign, SHA-256 + ECDSA P-256, 32 bytes), median of $(t signs)" µs 1)
$(trow sign us.p90 "… p90" µs 1)

Memory: \`chargeguard run\` (2 EVSEs, \`--log-level warn\`) against the dev CSMS, after \`"online": true\`
(BootNotification accepted) and 2 s idle; median of $RSS_REPS starts each (range of the PKCS#11 station in
brackets). Baseline: the same station at profile 2 (Basic auth, file key store). As the CSMS saw them: $P3_SEEN.

| Measure | Profile 3, PKCS#11 key store | Profile 3, file key store | Baseline: profile 2 | PKCS#11 / baseline | File / baseline |
|---|---|---|---|---|---|
$(prow vmrss_kb "VmRSS, connected")
$(prow vmhwm_kb "VmHWM (peak)")
$(prow rssanon_kb "RssAnon")
$(prow rssfile_kb "RssFile")
$(prow pss_kb "Pss")
EOF
fi
echo
if [ "$RUNS" -gt 0 ]; then
  printf 'CALLERROR answers in all measured rounds of all runs: station %s, echo %s. ' \
    "$(cat "$TMP"/run-*.txt | awk '$1 ~ /^load\.station\..*\.errors$/ { s += $2 } END { print s + 0 }')" \
    "$(cat "$TMP"/run-*.txt | awk '$1 ~ /^load\.echo\..*\.errors$/ { s += $2 } END { print s + 0 }')"
fi
echo "Total time $(( $(date +%s) - STARTED )) s."

