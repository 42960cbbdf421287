"""What every command-line tool and demo shares: one error path, quiet third-party imports.

- :mod:`.errors`: :func:`run_main` (one line and an exit status for what a
  tool raises, ``--debug``), :func:`exit_now` (an exit without the
  interpreter's teardown), the ``--cfg-options`` action;
- :mod:`.quiet`: MMagic imported with its known warnings silenced, at our
  entry points only.
"""
from .errors import cfg_options_action, exit_now, first_line, run_main, user_errors
from .quiet import import_mmagic, known_warnings_silenced, quiet_runner_logger

__all__ = ['cfg_options_action', 'exit_now', 'first_line', 'import_mmagic',
           'known_warnings_silenced', 'quiet_runner_logger', 'run_main', 'user_errors']
