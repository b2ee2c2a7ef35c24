#!/bin/sh
# Runs a program under the guard test harness (guard_shim.c), a stand-in for the agent until
# the hooks call the guard:  guard_shim_run.sh SHIM.so [--guard-option...] PROGRAM [ARGS...]
shim=$1
shift
opts=""
while [ $# -gt 0 ]; do
    case $1 in
        --*) opts="$opts $1"; shift ;;
        *) break ;;
    esac
done
HTR_GUARD_OPTIONS="$opts" LD_PRELOAD="$shim${LD_PRELOAD:+:$LD_PRELOAD}" exec "$@"
