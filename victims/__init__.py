"""Built-in victims of skelrobust (installed as ``skelrobust.victims``).

Every module in this package registers its plugin on import; importing the package imports them all.
"""

from skelrobust.registry import import_submodules

import_submodules(__name__)
