"""Training workers die with their parent: after ``kill -9`` of the process that asked for an
f/g pair, the two training processes of :func:`memloc.artifacts.encoder_pair` must not finish
the training as orphans (issue 12)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process from /proc, None when it no longer exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    """Running (a zombie left for a parent that does not reap it counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _pool_workers(parent: int) -> list[int]:
    """Children of ``parent`` started by multiprocessing's spawn (not its resource tracker)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is None or stat[1] != parent:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "spawn_main" in cmdline:
            out.append(int(entry.name))
    return sorted(out)


def _wait(condition, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


def _python(code: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env)


def test_a_process_whose_parent_is_gone_exits():
    # exit_with_parent is given a pid that is not this process's parent: the parent "died".
    child = _python(
        "import time\nfrom memloc.artifacts import exit_with_parent\n"
        "exit_with_parent(-1, poll_s=0.1)\ntime.sleep(120)\n"
    )
    try:
        assert child.wait(timeout=60) != 0
    finally:
        child.kill()


def test_a_process_whose_parent_lives_keeps_running():
    child = _python(
        "import os, time\nfrom memloc.artifacts import exit_with_parent\n"
        "exit_with_parent(os.getppid(), poll_s=0.1)\ntime.sleep(2)\n"
    )
    assert child.wait(timeout=60) == 0


# A pair on tiny sizes with far more epochs than the test waits for: the workers are training
# when the parent is killed.
PARENT = """
import sys
from memloc.artifacts import encoder_pair
encoder_pair(
    "quick", "simclr", cache_dir=sys.argv[1], parallel=True, progress=False,
    n_shared=40, n_candidate=20, n_independent=20, n_heldout=20, n_downstream=0,
    batch_size=16, epochs=100000, snapshot_epochs=[],
)
"""


def test_pair_training_workers_exit_after_kill_9_of_their_parent(tmp_path):
    parent = _python(PARENT, str(tmp_path / "cache"))
    workers = []
    try:
        workers = _wait(lambda: len(_pool_workers(parent.pid)) == 2, 120) and _pool_workers(
            parent.pid
        )
        assert workers, "the parent did not start two training workers"
        # Both have started training: each holds its entry's lock file.
        assert _wait(lambda: len(list((tmp_path / "cache").glob("*.lock"))) == 2, 120)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        gone = _wait(lambda: not any(_alive(pid) for pid in workers), 20)
        assert gone, f"training workers {[p for p in workers if _alive(p)]} outlived their parent"
        # They stopped through the training's cleanup, which releases and deletes the locks.
        assert not list((tmp_path / "cache").glob("*.lock"))
    finally:
        parent.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
