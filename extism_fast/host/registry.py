"""``HOST_FN_REGISTRY`` on its own: the default ``functions=`` of Plugin, CompiledPlugin and
PluginPool (compared by identity), which they need without loading host/functions.py (enum, and
typing for inferred signatures) for a plugin that has no host function. host/functions.py
re-exports it, the same list, which :func:`~extism_fast.host.functions.host_fn` appends to."""

#: Functions registered with ``host_fn``; ``Plugin`` uses them when ``functions`` is not given
#: (typed ``List[Function]`` where host/functions.py re-exports it).
HOST_FN_REGISTRY: list = []

#: The names host/functions.py defines (ValType: enum), loaded when first used by the package and
#: by extism_fast.extism (their ``__getattr__``): neither ``import extism_fast`` nor a plugin
#: without host functions needs them.
FUNCTION_NAMES = ("Codec", "ExplicitFunction", "Function", "Json", "Pickle", "TypeInferredFunction", "Val", "ValType",
                  "host_fn")
