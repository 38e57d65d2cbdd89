"""Stand-in for ansible-test's pip bootstrap script (get-pip), for machines that reach
only the package index.

ansible-test creates each sanity test's virtual environment without pip and then
downloads a bootstrap script from its own file host (scripts/sanity.sh puts this one
in ansible-test's cache instead). It does the same job: the interpreter's bundled pip
(ensurepip) installs the pip version ansible-test asks for, from the package index, with
pip's usual configuration. Run as ``python get_pip.py [pip options] pip==X``.
"""

from __future__ import annotations

import ensurepip
import importlib
import os
import runpy
import sys

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
environ = dict(os.environ)
ensurepip.bootstrap(upgrade=True, default_pip=False)
# ensurepip hides pip's configuration (index, certificates) from itself: give it back
os.environ.clear()
os.environ.update(environ)
importlib.invalidate_caches()
sys.argv = ["pip", "install", *args]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
