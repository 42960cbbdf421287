"""``exit_now``: the exit status, threads, atexit handlers and buffered output
of a normal exit, without the interpreter's teardown."""
import subprocess
import sys
import textwrap


def test_exit_now_keeps_what_a_normal_exit_does(tmp_path):
    code = textwrap.dedent('''
        import atexit, sys, threading, time
        from mmagic_cm.cli import exit_now
        done = []
        def late():
            time.sleep(0.3)
            done.append(1)
            print('thread done', end='')
        threading.Thread(target=late).start()   # not a daemon: joined first
        atexit.register(lambda: print(' atexit saw', len(done), end=''))
        sys.stdout.write('buffered;')            # no newline: still in the buffer
        sys.stderr.write('err;')
        exit_now(3)
        print('never')
    ''')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == 'buffered;thread done atexit saw 1'
    assert proc.stderr == 'err;'
