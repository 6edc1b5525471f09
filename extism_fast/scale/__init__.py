"""Many calls at once: ``pool`` (PluginPool), ``aio`` (asyncio), ``arrow`` (Arrow columns), and the
engines that spread partitions over worker processes: ``dask``, ``ray`` and what they share
(``_workers``). A new engine (Spark, Beam) goes here, beside them, on ``_workers``."""
