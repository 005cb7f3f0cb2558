"""The workflow of tests/deploy_workflows.py as a module of the next deploy (v2, guarded).

Imported only by the upgrade check's own process (it would re-register the name here).
"""

import dolmen
from tests.deploy_workflows import NAME, v2_guarded

order = dolmen.workflow(v2_guarded, name=NAME)
