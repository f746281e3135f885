#!/usr/bin/env bash
# Sets up and runs the station: installs what is missing, builds, creates a
# development PKI, provisions the station's identity (key in the key store,
# certificate CN = serial, O = operator, signed by the dev operator CA), pins
# the dev manufacturer root and installs this build as the factory firmware
# image (signed by the dev firmware signer), creates the first maintenance
# account (its initial password is the device's "label": $DEMO/label.txt),
# starts the local development CSMS
# and the station through its boot stage (`chargeguard boot`: the verified
# firmware slot runs), connected with mutual TLS (security profile 3). Ctrl-C
# stops both.
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

[web]
listen = "127.0.0.1:${CG_DEMO_WEB_PORT:-8443}"

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

# Firmware (issue 11): the station runs the signed image of its boot slot. The
# first start (and any start after a rebuild) installs this build as the
# factory image, at the station's current security-version floor.
fw_status() { "$BIN" firmware status --config "$DEMO/station.toml" 2>/dev/null; }
json_get() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const v=JSON.parse(s);const r=process.argv[1].split(".").reduce((o,k)=>o==null?o:o[k],v);console.log(r??"")}catch{console.log("")}})' "$1"; }
mkdir -p "$DEMO/firmware"
if [ ! -f "$DEMO/state/firmware/slots.json" ]; then
  say "pinning the development manufacturer root (firmware signatures chain to it)"
  "$BIN" pki install-root --config "$DEMO/station.toml" --type ManufacturerRootCertificate \
    --cert "$DEMO/pki/manufacturer-root-ca.pem" >/dev/null
fi
BUILD_SHA=$(sha256sum "$BIN" | cut -d' ' -f1)
if [ "$(cat "$DEMO/firmware/factory.sha256" 2>/dev/null)" != "$BUILD_SHA" ]; then
  VERSION="$("$BIN" --version | awk '{ print $2 }')"
  FLOOR="$(fw_status | json_get security_floor)"
  SV=$(( ${FLOOR:-0} > 1 ? FLOOR : 1 ))
  say "installing this build as the factory firmware image (version $VERSION, security version $SV)"
  "$BIN" firmware pack --payload "$BIN" --model CG-SIM --version "$VERSION" --security-version "$SV" \
    --out "$DEMO/firmware/factory.img" >/dev/null
  "$BIN" firmware sign --key "$DEMO/pki/firmware-signer.key" --cert "$DEMO/pki/firmware-signer.pem" \
    "$DEMO/firmware/factory.img" > "$DEMO/firmware/factory.sig"
  "$BIN" firmware install-factory --config "$DEMO/station.toml" --image "$DEMO/firmware/factory.img" \
    --cert "$DEMO/pki/firmware-signer.pem" --signature "$DEMO/firmware/factory.sig" >/dev/null
  echo "$BUILD_SHA" > "$DEMO/firmware/factory.sha256"
fi

# The maintenance web UI (issue 12): the first admin account, its initial
# password printed once by accounts init; kept in the demo directory as the
# device's label would be.
if [ ! -f "$DEMO/label.txt" ]; then
  say "creating the first maintenance account (admin) with a random initial password"
  (umask 077; "$BIN" accounts init --config "$DEMO/station.toml" 2>/dev/null > "$DEMO/label.txt.new") &&
    mv "$DEMO/label.txt.new" "$DEMO/label.txt" || rm -f "$DEMO/label.txt.new"
fi
# The station's own commissioning PIN (AUTH-9), also on the label; a default to replace.
if [ ! -f "$DEMO/pin.txt" ]; then
  say "creating the station's commissioning PIN (a default: replace it on the web UI's Commissioning PIN page)"
  (umask 077; "$BIN" pin init --config "$DEMO/station.toml" 2>/dev/null > "$DEMO/pin.txt.new") &&
    mv "$DEMO/pin.txt.new" "$DEMO/pin.txt" || rm -f "$DEMO/pin.txt.new"
fi
WEB_FPR="$("$BIN" web show-cert --config "$DEMO/station.toml" | awk '/SHA-256/ { print $3 }')"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

say "starting the development CSMS on wss://localhost:$PORT/ocpp (log: $DEMO/csms.log)"
node "$REPO/tools/dev-csms/csms.js" --port "$PORT" --cert "$DEMO/pki/csms-server.pem" \
  --key "$DEMO/pki/csms-server.key" --ca "$DEMO/pki/operator-root-ca.pem" --require-client-cert \
  --organization "Demo CPO" --station CS001=CG-DEMO-0001 \
  --sign-ca-cert "$DEMO/pki/operator-root-ca.pem" --sign-ca-key "$DEMO/pki/operator-root-ca.key" \
  --heartbeat-interval 60 --control "$DEMO/csms.sock" > "$DEMO/csms.log" 2>&1 &
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
  Push a firmware update from the CSMS (signed image, downloaded over HTTPS, A/B install, reboot):
    $BIN firmware pack --payload $BIN --model CG-SIM --version 2.0.0-demo --security-version 2 --out $DEMO/firmware/v2.img
    $BIN firmware sign --key $DEMO/pki/firmware-signer.key --cert $DEMO/pki/firmware-signer.pem $DEMO/firmware/v2.img > $DEMO/firmware/v2.sig
    node $REPO/tools/dev-csms/csms.js update-firmware --control $DEMO/csms.sock --station CS001 \\
      --image $DEMO/firmware/v2.img --signature $DEMO/firmware/v2.sig --cert $DEMO/pki/firmware-signer.pem
    $BIN firmware status --config $DEMO/station.toml     # slots, booted slot, floor, last outcome
  Maintenance web UI: https://127.0.0.1:${CG_DEMO_WEB_PORT:-8443}/   user: admin
    initial password (the device label, valid until the first login changes it): $(cat "$DEMO/label.txt" 2>/dev/null)
    commissioning PIN (label; the dashboard asks to replace it):                  $(cat "$DEMO/pin.txt" 2>/dev/null)
    the browser warns about the self-signed certificate; check its SHA-256 fingerprint:
    $WEB_FPR
  Watch what the CSMS receives:  tail -f $DEMO/csms.log
  The station's identity:        $BIN pki show --config $DEMO/station.toml
  Station state (SQLite): $DEMO/state/station.db    Ctrl-C stops everything.

TXT
"$BIN" boot --config "$DEMO/station.toml" &
pids+=($!)
wait "${pids[1]}"
