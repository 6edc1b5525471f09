"""Many calls at once: ``pool`` (PluginPool), ``aio`` (asyncio), ``arrow`` (Arrow columns), and the
engines that spread partitions over worker processes: ``dask``, ``ray`` and what they share
(``_workers``). A new engine (Spark, Beam) goes here, beside them, on ``_workers``."""

#: The largest ``size`` of a PluginPool: one thread and one instance each; a typo such as
#: ``size=10**9`` fails here instead of exhausting the machine's memory. Here, not in ``pool``, so
#: that ``extism-fast --help`` (its ``--workers`` bound) loads no pool machinery.
MAX_POOL_SIZE = 4096
