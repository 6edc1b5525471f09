"""``HOST_FN_REGISTRY`` on its own: the default ``functions=`` of Plugin, CompiledPlugin and
PluginPool (compared by identity), which they need without loading host/functions.py (enum, and
typing for inferred signatures) for a plugin that has no host function. host/functions.py
re-exports it, the same list, which :func:`~extism_fast.host.functions.host_fn` appends to."""

#: Functions registered with ``host_fn``; ``Plugin`` uses them when ``functions`` is not given
#: (typed ``List[Function]`` where host/functions.py re-exports it).
HOST_FN_REGISTRY: list = []
