"""A node process's end after a clean stop (``mtpolicy.nodes.process.exit_without_finalizing``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import atexit, ctypes, sys
    from mtpolicy.nodes.process import exit_without_finalizing

    class Finalized:
        def __del__(self):
            sys.stdout.write("finalized")

    kept = Finalized()
    atexit.register(lambda: sys.stdout.write("atexit|"))
    sys.stdout.write("python|")
    ctypes.CDLL(None).printf(b"c stdio|")
    exit_without_finalizing(3)
""")


def test_a_stopped_node_exits_with_its_code_its_output_flushed_and_no_finalization():
    """Into a pipe (fully buffered, as under a launcher): the exit functions run, Python's and C's buffered output
    both arrive, the code is the node's, and the interpreter is not finalized (an object's ``__del__`` at
    teardown does not run)."""
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done
    assert sorted(done.stdout.split("|")) == sorted(["python", "c stdio", "atexit", ""]), done
    assert "finalized" not in done.stdout and done.stderr == "", done
