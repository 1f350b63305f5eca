"""``karaoke-bot worker`` with the karaoke video's parts that this checkout lacks stood
in (``tests.support.video_standins``): the fleet's video tests run the real worker, in
its own process, before the branches that provide those parts are merged; once they
are, nothing is stood in and this is the plain worker.

Used as ``Fleet.start_worker(wrap=STANDIN_WORKER)``: the arguments after it are the
worker's own command line (``python -m bot.cli.main worker ...``), run in this process.
"""

from __future__ import annotations

import runpy
import sys

from tests.support.video_standins import install_missing_parts

if __name__ == "__main__":
    install_missing_parts()
    arguments = sys.argv[1:]
    module = arguments[arguments.index("-m") + 1]
    sys.argv = [module, *arguments[arguments.index("-m") + 2 :]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
