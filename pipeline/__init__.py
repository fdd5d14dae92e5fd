"""The analyser: listing text in, models, serials and flags out (see analyse.py).

`BUILD` says whether the mypyc-compiled modules are in use ("compiled") or the sources ("source": a
pure-Python build, or sources edited since the build, which then always win; see _build.py).
"""

from pipeline._build import choose_build

BUILD = choose_build()
