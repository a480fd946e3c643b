#!/bin/sh
# dbpilot script route: move a virtual IP to the primary (docs/routing.md, "Script routes: a VIP").
#
# Install as root into DBPILOT_HOOKS_DIR (e.g. /var/lib/dbpilot/hooks/move-vip, mode 0755) with its
# settings in move-vip.conf next to it, then register the route:
#   POST /api/v1/clusters/{id}/routes/  {"kind": "script", "script": "move-vip"}
#
# dbpilot runs it with:  EVENT PHASE CLUSTER OLD_PRIMARY NEW_PRIMARY
#   pre  (the primary is leaving, writes are about to stop): take the VIP off the old primary;
#   post (the new primary takes writes):                    put the VIP on the new primary.
# It must be idempotent (a resumed job may run it again) and quick (the hooks timeout kills it).
# Exit 0 on success; anything else marks the route stale in the job (the switch itself goes on).
set -eu

EVENT=$1 PHASE=$2 CLUSTER=$3 OLD_PRIMARY=$4 NEW_PRIMARY=$5
. "$(dirname "$0")/move-vip.conf"   # VIP=10.0.0.100/24  DEVICE=eth0  SSH_USER=dbpilot-vip

host_of() {  # host:port or [v6]:port -> host
    case "$1" in
        \[*) echo "$1" | sed 's/^\[\(.*\)\]:[0-9]*$/\1/' ;;
        *) echo "${1%:*}" ;;
    esac
}

on() {  # run a command on a database host, bounded in time, never prompting
    timeout 5 ssh -o BatchMode=yes -o ConnectTimeout=2 "$SSH_USER@$(host_of "$1")" "$2"
}

echo "$EVENT $PHASE $CLUSTER: old=$OLD_PRIMARY new=$NEW_PRIMARY vip=$VIP"
case "$PHASE" in
    pre)
        # The old primary may be dead (a failover): then there is nothing to take the VIP off.
        [ -n "$OLD_PRIMARY" ] && on "$OLD_PRIMARY" "sudo ip addr del $VIP dev $DEVICE 2>/dev/null || true" || true
        ;;
    post)
        [ -n "$NEW_PRIMARY" ] || { echo "no new primary given" >&2; exit 2; }
        on "$NEW_PRIMARY" "ip addr show dev $DEVICE | grep -q ' ${VIP%/*}/' || sudo ip addr add $VIP dev $DEVICE"
        # Tell the neighbours at once, so clients do not wait for their ARP caches to expire.
        on "$NEW_PRIMARY" "sudo arping -c 2 -A -I $DEVICE ${VIP%/*} >/dev/null 2>&1 || true"
        ;;
esac
