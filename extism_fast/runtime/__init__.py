"""The pure-Python parts of the runtime the extension (``extism_fast._runtime``) calls: the compile
cache, pickling CompiledPlugin and the dumps a failed call leaves (``debug_dumps``)."""
