"""The one error path of the command-line tools and demos.

Every ``tools/*.py`` and ``demo/*.py`` ends in ``sys.exit(run_main(main))``
(``tools/sample.py``: ``exit_now(run_main(main))``, the same exit without the
interpreter's teardown):

- a user error (a bad value, a missing or unreadable file, a bad config)
  prints one line ``error: ...`` naming the value and the fix; exit 2;
- Ctrl-C prints one line saying what was kept and how to continue; exit 130
  (outputs are written atomically, so nothing half-written remains);
- anything unexpected prints one line naming the exception; exit 1.

``--debug`` on the command line (taken out before the tool parses its
arguments) or ``MMAGIC_CM_DEBUG=1`` prints the traceback as well.
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import Callable, List, Optional

#: what a careful user can fix: one line, exit 2
USER_ERRORS = (ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
               PermissionError, SyntaxError)
INTERRUPTED = ('interrupted: finished outputs are kept and nothing is half-written; run the '
               'same command again to continue (sharded sampling and training with '
               '--resume pick up where they stopped)')


def user_errors() -> tuple:
    """:data:`USER_ERRORS` and the project's and mmengine's own error types."""
    from ..files.checkpoint import CheckpointError
    errors = USER_ERRORS + (CheckpointError, )
    try:
        from mmengine.config.utils import ConfigParsingError
        errors += (ConfigParsingError, )
    except ImportError:  # core-only installs without mmengine
        pass
    return errors


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_main(main: Callable[[Optional[List[str]]], int], argv: Optional[List[str]] = None) -> int:
    """Call ``main(argv)`` and turn what it raises into one line and an exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get('MMAGIC_CM_DEBUG', '') not in ('', '0')
    if '--debug' in argv:
        argv.remove('--debug')
        debug = True
    try:
        return main(argv)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 (the one place that catches everything)
        if debug:
            traceback.print_exc()
        if isinstance(exc, user_errors()):
            print(f'error: {first_line(exc)}', file=sys.stderr)
            return 2
        print(f'error: unexpected {type(exc).__name__}: {first_line(exc)} (rerun with --debug '
              'for the traceback)', file=sys.stderr)
        return 1


def exit_now(status: int) -> None:
    """End the process with ``status`` as Python's own exit would, less its
    teardown: threads are joined (``threading``'s exit hooks) and the atexit
    handlers run, output is flushed, then ``os._exit``. Unloading torch's and
    OpenVINO's libraries and freeing every module's objects takes about a
    second of a sampling command, and nothing needs it (the system frees the
    memory). For an entry point's last line only (``tools/sample.py``).
    """
    import atexit
    import threading
    shutdown = getattr(threading, '_shutdown', None)  # what the interpreter calls first
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, or a broken pipe
            pass
    os._exit(status)


def cfg_options_action():
    """The ``--cfg-options KEY=VALUE ...`` argparse action: mmengine's
    ``DictAction``, refusing an item without ``KEY=`` in one line."""
    from mmengine.config import DictAction

    class CfgOptions(DictAction):
        def __call__(self, parser, namespace, values, option_string=None):
            for item in values:
                if '=' not in item or item.startswith('='):
                    raise ValueError(f'{option_string} {item}: expected KEY=VALUE, e.g. '
                                     'model.seed=1 or train_cfg.max_iters=100')
            super().__call__(parser, namespace, values, option_string)

    return CfgOptions
