"""The workflow of tests/deploy_workflows.py as a module of the next deploy (v2, unguarded).

Imported only by the upgrade check's own process (it would re-register the name here).
"""

import dolmen
from tests.deploy_workflows import NAME, v2_unguarded

order = dolmen.workflow(v2_unguarded, name=NAME)
