"""Network namespaces for sandbox servers, so a test can cut one host off the network.

Every node lives in its own namespace, linked by a veth pair to one bridge in the root namespace. The
bridge holds 10.231.0.1/16: the control plane (in the root namespace) reaches every node through it, and
it is the only address a "cut from the control plane" drops. Node i of the sandbox with index k gets
10.231.k.(10+i). Only 10.231.0.0/16 is used: it is reserved for test namespaces.

Cuts are nftables drop rules inside the node's namespace: silence (timeouts), never a refused connection,
which is what a crashed or isolated host looks like.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

from clusters.providers.errors import SandboxError

BRIDGE = "dbpbr0"
NETWORK_PREFIX = "10.231"
CONTROL_ADDRESS = "10.231.0.1"
PREFIX_LENGTH = 16
CUT_TABLE = "dbpilot_cut"
HOST_VETH = re.compile(r"^dbp(\d+)n(\d+)$")
MAX_SANDBOX_INDEX = 250


def namespace_name(sandbox: str, node: int) -> str:
    return f"dbp-{sandbox}-n{node}"


def host_veth_name(index: int, node: int) -> str:
    return f"dbp{index}n{node}"  # interface names have at most 15 characters


def node_address(index: int, node: int) -> str:
    return f"{NETWORK_PREFIX}.{index}.{10 + node}"


def _ip(*args: str, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, input=input_text, timeout=30)
    if check and result.returncode != 0:
        raise SandboxError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def check_available() -> None:
    """Network-namespace mode needs root and the ip and nft tools; say which one is missing."""
    if os.geteuid() != 0:
        raise SandboxError("network-namespace mode needs root (ip netns add); run as root or use netns=False")
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            raise SandboxError(f"network-namespace mode needs `{tool}`: apt-get install {package}")


def used_indexes() -> set[int]:
    """Sandbox indexes that some host-side veth still uses (ours or a previous run's)."""
    out = _ip("-j", "link", "show").stdout
    used = set()
    for link in json.loads(out or "[]"):
        match = HOST_VETH.match(link.get("ifname", ""))
        if match:
            used.add(int(match.group(1)))
    return used


def ensure_bridge() -> None:
    if _ip("link", "show", BRIDGE, check=False).returncode != 0:
        _ip("link", "add", BRIDGE, "type", "bridge")
    links = json.loads(_ip("-j", "addr", "show", "dev", BRIDGE).stdout or "[]")
    if not any(a.get("local") == CONTROL_ADDRESS for link in links for a in link.get("addr_info", [])):
        _ip("addr", "add", f"{CONTROL_ADDRESS}/{PREFIX_LENGTH}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")


def remove_bridge_if_unused() -> None:
    result = _ip("-j", "link", "show", "master", BRIDGE, check=False)
    if result.returncode != 0:
        return  # no bridge
    if not json.loads(result.stdout or "[]"):
        _ip("link", "del", BRIDGE, check=False)


def create_node_namespace(namespace: str, veth: str, address: str) -> None:
    try:
        _ip("netns", "add", namespace)
    except SandboxError as exc:
        raise SandboxError(
            f"{exc}\nnetwork-namespace mode needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN (not available in "
            "an unprivileged container); use netns=False"
        ) from None
    _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
    _ip("link", "set", veth, "master", BRIDGE, "up")
    _ip("-n", namespace, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", "eth0")
    _ip("-n", namespace, "link", "set", "eth0", "up")
    _ip("-n", namespace, "link", "set", "lo", "up")


def delete_veth(veth: str) -> None:
    _ip("link", "del", veth, check=False)  # explicit: a deleted namespace frees its veth only later


def delete_namespace(namespace: str) -> None:
    _ip("netns", "del", namespace, check=False)


def leftover_namespaces(sandbox: str) -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    prefix = f"dbp-{sandbox}-n"
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(prefix) and n[len(prefix) :].isdigit()]


def cut(namespace: str, from_control: bool, from_peers: bool) -> None:
    """Drop (silently) the node's traffic with the control plane, with its peers, or both."""
    if not (from_control or from_peers):
        raise SandboxError("cut needs from_control, from_peers or both")
    if from_control and from_peers:
        rules_in, rules_out = ['iifname "eth0" drop'], ['oifname "eth0" drop']
    elif from_control:
        rules_in, rules_out = [f"ip saddr {CONTROL_ADDRESS} drop"], [f"ip daddr {CONTROL_ADDRESS} drop"]
    else:
        rules_in = [f'iifname "eth0" ip saddr != {CONTROL_ADDRESS} drop']
        rules_out = [f'oifname "eth0" ip daddr != {CONTROL_ADDRESS} drop']
    ruleset = (
        f"table inet {CUT_TABLE}\n"
        f"delete table inet {CUT_TABLE}\n"  # replaces an earlier cut instead of adding to it
        f"table inet {CUT_TABLE} {{\n"
        f"  chain input {{ type filter hook input priority 0; policy accept; {'; '.join(rules_in)}; }}\n"
        f"  chain output {{ type filter hook output priority 0; policy accept; {'; '.join(rules_out)}; }}\n"
        "}\n"
    )
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, "nft", "-f", "-"],
        input=ruleset,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        raise SandboxError(f"installing the drop rules in {namespace} failed: {result.stderr.strip()}")


def heal(namespace: str) -> None:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, "nft", "delete", "table", "inet", CUT_TABLE],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0 and "No such file" not in result.stderr:
        raise SandboxError(f"removing the drop rules in {namespace} failed: {result.stderr.strip()}")
