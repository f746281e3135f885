#!/usr/bin/env bash
# REQ: NET-5 — the station binary carries the platform's protections.
# Usage: check-binary.sh BINARY. Fails naming each missing protection.
set -euo pipefail
bin="${1:?usage: check-binary.sh BINARY}"
json="$(checksec --file="$bin" --output=json)"
fail=0
check() {  # key expected
  local got
  got="$(printf '%s' "$json" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p")"
  if [ "$got" = "$2" ]; then
    echo "ok   $1 = $got"
  else
    echo "FAIL $1 = '${got}' (expected $2)"
    fail=1
  fi
}
check relro full
check canary yes
check nx yes
check pie yes
check fortify_source yes
check rpath no
check runpath no
# No executable stack segment.
if readelf -lW "$bin" | grep -q 'GNU_STACK.*RWE'; then echo "FAIL executable stack"; fail=1; else echo "ok   stack not executable"; fi
# BIND_NOW (full RELRO) really is in the dynamic section.
if readelf -dW "$bin" | grep -Eq 'FLAGS.*BIND_NOW|FLAGS_1.*NOW'; then echo "ok   BIND_NOW"; else echo "FAIL BIND_NOW missing"; fail=1; fi
exit $fail
