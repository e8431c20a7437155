"""The platform package, which also *is* the standard library's ``platform`` module.

torch, ray, numpy and pandas import ``platform`` and expect the standard library. We execute the stdlib
module's code in this package's own namespace (not copying attributes from a second module object, which
breaks pickling of ``uname_result`` and writes to ``_uname_cache``). Nothing else may live here: every
process that imports ``platform`` runs this. The README ("Quick start") explains why.
"""

import importlib.machinery as _machinery
import os as _os

_spec = _machinery.PathFinder.find_spec("platform", [_os.path.dirname(_os.__file__)])
exec(_spec.loader.get_code("platform"), globals())
del _machinery, _os, _spec
