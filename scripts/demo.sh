#!/usr/bin/env bash
# Sets up and runs the station: installs what is missing, builds, creates a
# development PKI, provisions the station's identity (key in the key store,
# certificate CN = serial, O = operator, signed by the dev operator CA), starts
# the local development CSMS and the station connected to it with mutual TLS
# (security profile 3). Ctrl-C stops both.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_packages --programs build,demo -- "${BUILD_PACKAGES[@]}"
ensure_node_modules
build_release
BIN="$BUILD_DIR/chargeguard"
DEMO="${CG_DEMO_DIR:-$REPO/.demo}"
PORT="${CG_DEMO_PORT:-9443}"
mkdir -p "$DEMO" && chmod 700 "$DEMO"

if [ ! -f "$DEMO/pki/csms-root-ca.pem" ]; then
  say "creating a development PKI in $DEMO/pki"
  "$BIN" pki dev-init --out "$DEMO/pki" >/dev/null
fi
cat > "$DEMO/station.toml" <<TOML
# Demo station: see docs/configuration.md
[station]
identity = "CS001"
serial = "CG-DEMO-0001"
organization = "Demo CPO"
state_dir = "$DEMO/state"

[csms]
url = "wss://localhost:$PORT/ocpp"
security_profile = 3
ca_file = "$DEMO/pki/csms-root-ca.pem"
client_ca_file = "$DEMO/pki/operator-root-ca.pem"

[[evse]]
max_current_a = 32
[[evse]]
max_current_a = 16

[device_model]
"SampledDataCtrlr.TxUpdatedInterval" = 10
TOML

if [ ! -f "$DEMO/state/identity/station.pem" ]; then
  say "provisioning the station identity (key in the key store, certificate by the dev operator CA)"
  "$BIN" pki provision --config "$DEMO/station.toml" \
    --ca-cert "$DEMO/pki/operator-root-ca.pem" --ca-key "$DEMO/pki/operator-root-ca.key" >/dev/null
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

say "starting the development CSMS on wss://localhost:$PORT/ocpp (log: $DEMO/csms.log)"
node "$REPO/tools/dev-csms/csms.js" --port "$PORT" --cert "$DEMO/pki/csms-server.pem" \
  --key "$DEMO/pki/csms-server.key" --ca "$DEMO/pki/operator-root-ca.pem" --require-client-cert \
  --organization "Demo CPO" --station CS001=CG-DEMO-0001 \
  --sign-ca-cert "$DEMO/pki/operator-root-ca.pem" --sign-ca-key "$DEMO/pki/operator-root-ca.key" \
  --heartbeat-interval 60 > "$DEMO/csms.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$DEMO/csms.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$DEMO/csms.log" || { cat "$DEMO/csms.log"; echo "the dev CSMS did not start" >&2; exit 1; }

cat <<TXT

  The station is starting with 2 simulated EVSEs. In another terminal, drive it:
    $BIN sim --state-dir $DEMO/state plug 1           # connect an EV to EVSE 1
    $BIN sim --state-dir $DEMO/state badge 1 04A2B3C4  # present an RFID badge
    $BIN sim --state-dir $DEMO/state draw 1 16         # the EV draws 16 A
    $BIN sim --state-dir $DEMO/state status            # what the station sees
    $BIN sim --state-dir $DEMO/state badge 1 04A2B3C4  # badge again: stop
    $BIN sim --state-dir $DEMO/state unplug 1
  Watch what the CSMS receives:  tail -f $DEMO/csms.log
  The station's identity:        $BIN pki show --config $DEMO/station.toml
  Station state (SQLite): $DEMO/state/station.db    Ctrl-C stops everything.

TXT
"$BIN" run --config "$DEMO/station.toml" &
pids+=($!)
wait "${pids[1]}"
