"""dolmen: durable workflows for Python on Ray, with a native fast path."""
