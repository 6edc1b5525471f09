# _hooks.pxi - Hooks the C kernel calls into Python: logging and keep_store (http_request's is
# _host_http.pxi's).
# Part of extism_fast/_runtime.pyx (included there; one Cython module).

# ---------------------------------------------------------------------------------------------
# Logging hooks (called from import callbacks without the GIL)
# ---------------------------------------------------------------------------------------------

cdef void _log_hook(void *owner, int level, const uint8_t *msg, size_t n) noexcept nogil:
    with gil:
        plugin = <Plugin>owner
        try:
            target = plugin._options.logger
            if target is None:  # no Plugin(logger=...)
                target = get_logger()
            py_level = _PY_LEVELS[level]
            if target.isEnabledFor(py_level):
                text = (<char *>msg)[:n].decode("utf-8", "replace")
                target.log(py_level, text, extra={"plugin_id": str(plugin.id)})
        except Exception:
            logger.exception("extism_fast: logging a plugin message failed")
        except BaseException as exc:  # Ctrl-C while logging: raised after the call (which it stops)
            plugin._keep_interrupt(exc)


cdef int32_t _log_level_hook(void *owner) noexcept nogil:
    with gil:
        plugin = <Plugin>owner
        try:
            # "off" until the application configures logging (of the plugin's own logger, if any)
            return plugin_log_level(plugin._options.logger)
        except BaseException as exc:
            plugin._keep_interrupt(exc)  # Ctrl-C: raised after the call
            return INT32_MAX


# ---------------------------------------------------------------------------------------------
# A store about to be dropped (store_drop, kernel_c/store.h): the views into it keep it
# ---------------------------------------------------------------------------------------------

cdef int _keep_store_hook(void *owner, wasmtime_store_t *store) noexcept nogil:
    with gil:
        return (<Plugin>owner)._keep_store(store)
