"""The receiving end of a clone between hosts: `python -m clusters.agent.receiver ADDRESS DATADIR WORKDIR`,
started by the target host's agent (operation clone_receive) with the job's one-time token on stdin.

It listens on the host's address (a port the kernel picks, written to WORKDIR/port), accepts the one
connection whose first frame opens with the key derived from the token (clusters.agent.sealed_stream;
anything else is dropped), pipes what the frames hold into `mbstream -x -C DATADIR`, and writes
WORKDIR/status.json: {"ok", "bytes", "error"}. The stream goes from the source's agent to this process
directly, encrypted: never through the control plane, never in clear.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from clusters.agent.sealed_stream import SealedReader, StreamBroken
from clusters.providers.local_provider import MBSTREAM

CONNECT_SECONDS = 120.0
READ_SECONDS = 300.0


def receive(address: str, datadir: Path, work: Path, token: str) -> dict:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as server:
        server.bind((address, 0))
        server.listen(4)
        (work / "port.tmp").write_text(str(server.getsockname()[1]))
        (work / "port.tmp").replace(work / "port")
        server.settimeout(CONNECT_SECONDS)
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                return {"ok": False, "bytes": 0, "error": f"no source connected within {CONNECT_SECONDS:g} s"}
            conn.settimeout(30)
            reader = conn.makefile("rb")
            sealed = SealedReader(token, reader)
            try:
                sealed.greet()
                break
            except (OSError, StreamBroken):
                reader.close()
                conn.close()  # not the job's source: keep waiting for it
        conn.settimeout(READ_SECONDS)
        extract = subprocess.Popen(
            [MBSTREAM, "-x", "-C", str(datadir)], stdin=subprocess.PIPE, stderr=subprocess.PIPE
        )
        copied = 0
        error = ""
        try:
            while chunk := sealed.read():
                extract.stdin.write(chunk)
                copied += len(chunk)
        except (OSError, StreamBroken) as exc:
            error = f"the stream broke after {copied} bytes: {exc}"
        finally:
            try:
                extract.stdin.close()
            except BrokenPipeError:
                pass
            stderr = extract.stderr.read().decode(errors="replace").strip()
            extract.wait()
            reader.close()
            conn.close()
        if extract.returncode != 0:
            error = error or f"mbstream -x failed: {stderr}"
        return {"ok": not error, "bytes": copied, "error": error}


def main() -> None:
    address, datadir, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    token = sys.stdin.readline().strip()
    try:
        status = receive(address, datadir, work, token)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong is the clone's reason
        status = {"ok": False, "bytes": 0, "error": f"{type(exc).__name__}: {exc}"}
    (work / "status.tmp").write_text(json.dumps(status))
    (work / "status.tmp").replace(work / "status.json")


if __name__ == "__main__":
    main()
