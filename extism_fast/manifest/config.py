"""A plugin's config: Plugin's ``config`` merged over a manifest's, as the official
``extism_plugin_config`` merges (JSON ``null`` deletes a key). One merge for both readers of a
config: the manifest schema's :func:`~extism_fast.manifest.schema.merge_config`, after its checks,
and the plain plugin's (manifest/plain.py), whose configs are plainly valid."""

TYPE_CHECKING = False  # typing is not loaded on a plain plugin's path (tests/test_cold_start.py)
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["config_merged"]


def config_merged(base: "Mapping", overrides: "Mapping") -> dict:
    """``overrides`` merged over ``base``, a None value removing its key (in this order: base's
    keys, then the new ones), once the caller has checked ``overrides``."""
    removed = [key for key, value in overrides.items() if value is None]
    merged = {key: value for key, value in base.items() if key not in removed}
    merged.update((key, value) for key, value in overrides.items() if value is not None)
    return merged
