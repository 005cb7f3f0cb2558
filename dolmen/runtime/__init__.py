"""The runtime: the bottom layer, pure. What users decorate and the engine that replays it.

No I/O, no Ray, no SQL here (``pyproject.toml`` has the contract): definitions and their
registry, the workflow API, the replay engine (``WorkflowInstance.activate`` returns a
``Completion``), events, the payload codec, errors, statuses, ids, outcomes, and the
activity kinds. Everything above builds on these modules; the public names are
re-exported by ``dolmen`` itself.
"""
