"""What a process holds open, read from ``/proc``: its TCP sockets to one port, and its open files.

``/proc/<pid>/fd`` names each open descriptor (``socket:[inode]`` for a socket); the process's
``/proc/<pid>/net/tcp`` and ``tcp6`` list every TCP socket of its network namespace with its remote
address, state and inode. Joined on the inode: the sockets *this* process holds, whatever their
state (an idle keep-alive connection, or one half-closed by the peer that nobody closed).
"""

from __future__ import annotations

import os
from pathlib import Path

#: The kernel's TCP states (include/net/tcp_states.h), as written in /proc/net/tcp.
_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}


def _descriptors(pid: int) -> list[str]:
    """What each open descriptor of ``pid`` points at (descriptors closed meanwhile are skipped)."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            continue
    return found


def tcp_sockets_to(pid: int, port: int) -> list[str]:
    """The states of the TCP sockets ``pid`` holds open whose remote port is ``port``."""
    inodes = {target[len("socket:[") : -1] for target in _descriptors(pid) if target.startswith("socket:[")}
    states = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == port:
                states.append(_STATES.get(state, state))
    return states


def open_files_under(pid: int, folder: Path) -> list[str]:
    """Files ``pid`` holds open in ``folder`` (also those already unlinked, marked ``(deleted)``)."""
    prefix = str(folder.resolve()) + os.sep
    return [target for target in _descriptors(pid) if target.startswith(prefix)]
