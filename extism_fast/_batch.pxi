# _batch.pxi - Batches of calls (call_many) and how outputs are returned.
# Part of extism_fast/_runtime.pyx (included there; one Cython module).

# ---------------------------------------------------------------------------------------------
# Outputs, and batches of calls
# ---------------------------------------------------------------------------------------------

_BATCH_SIZE = 1024

# _Batch.run's pause: never, after a failed item (its dumps are written), after every item (its
# WASI output is logged).
cdef enum:
    BATCH_PAUSE_FAILED = 1
    BATCH_PAUSE_EACH = 2


def parse_output(bytes out, parse):
    """An output copied out of kernel memory, as ``parse`` asks: bytes (``parse=bytes``), a
    memoryview of the copy (``parse=None``), or ``parse(out)``."""
    if parse is bytes:
        return out
    return memoryview(out) if parse is None else parse(out)


# _Batch.stop: written by another thread (Plugin._interrupt), read by the batch between calls.
cdef extern from *:
    """
    static inline void batch_flag_set(int *flag) { __atomic_store_n(flag, 1, __ATOMIC_RELEASE); }
    static inline int batch_flag_get(int *flag) { return __atomic_load_n(flag, __ATOMIC_ACQUIRE); }
    """
    void batch_flag_set(int *flag) noexcept nogil
    int batch_flag_get(int *flag) noexcept nogil


cdef class _Batch:
    """The inputs, results and outputs of one batch of calls; run() needs no GIL."""

    def __cinit__(self, list items):
        """``items``: the inputs (bytes-like or str); None for a batch whose inputs the caller
        points at itself after ``_allocate`` (the Arrow path: pointers into Arrow buffers)."""
        cdef size_t i
        if items is None:
            return
        self.items = _inputs_as_bytes(items)
        self._allocate(len(self.items))
        for i in range(self.count):
            data = self.items[i]
            self.inputs[i] = <const uint8_t *>PyBytes_AS_STRING(data)
            self.input_lengths[i] = PyBytes_GET_SIZE(data)

    cdef int _allocate(self, size_t count) except -1:
        self.count = count
        self.inputs = <const uint8_t **>calloc(count + 1, sizeof(uint8_t *))
        self.input_lengths = <uint64_t *>calloc(count + 1, sizeof(uint64_t))
        self.results_ = <call_result *>calloc(count + 1, sizeof(call_result))
        self.output_offsets = <uint64_t *>calloc(count + 1, sizeof(uint64_t))
        if not (self.inputs and self.input_lengths and self.results_ and self.output_offsets):
            raise MemoryError()
        return 0

    def __dealloc__(self):
        cdef size_t i
        if self.results_ != NULL:
            for i in range(self.count):
                free(self.results_[i].message)
        free(self.inputs)
        free(self.input_lengths)
        free(self.results_)
        free(self.output_offsets)
        free(self.arena)

    cdef bint _keep_output(self, size_t i) noexcept nogil:
        cdef call_result *r = &self.results_[i]
        cdef size_t needed = self.arena_length + r.output_length
        cdef uint8_t *grown
        if needed > self.arena_capacity:
            grown = <uint8_t *>realloc(self.arena, needed * 2 + 64)
            if grown == NULL:
                return False
            self.arena = grown
            self.arena_capacity = needed * 2 + 64
        if r.output_length:
            memcpy(self.arena + self.arena_length, r.output, r.output_length)
        self.output_offsets[i] = self.arena_length
        self.arena_length = needed
        r.output = NULL  # kernel memory is reused by the next call
        return True

    cdef void run(self, plugin_instance *inst, size_t index, bint return_exceptions, int pause) noexcept nogil:
        """The calls from ``done`` on. Stops before an item whose new store found the instance
        pool full (``pool_full``): the caller moves the plugin on-demand and runs the rest. With
        ``pause`` (BATCH_PAUSE_FAILED: after a failed item; BATCH_PAUSE_EACH: after every item),
        stops after such an item with ``paused`` set: the caller finishes its call
        (Plugin._finish_call), then runs the rest. Stops before the next call once ``stop`` is
        set, and sets it when Ctrl-C came (``watch_sigint``: a count other than ``sigint_seen``)."""
        cdef size_t i
        cdef bint failed
        for i in range(self.done, self.count):
            if self.watch_sigint and sigint_count() != self.sigint_seen:
                batch_flag_set(&self.stop)
            if batch_flag_get(&self.stop):
                return
            call_run(inst, index, self.inputs[i], self.input_lengths[i], 0, &self.results_[i])
            if self.results_[i].status == CALL_POOL_EXHAUSTED:
                free(self.results_[i].message)
                self.results_[i].message = NULL
                self.pool_full = True
                return
            if self.results_[i].status == CALL_OK and not self._keep_output(i):
                self.out_of_memory = True
                return
            self.done = i + 1
            failed = self.results_[i].status != CALL_OK
            if pause == BATCH_PAUSE_EACH or (failed and pause == BATCH_PAUSE_FAILED):
                self.paused = True
                return
            if failed and not return_exceptions:
                return

    cdef check_memory(self, function_name):
        if self.out_of_memory:
            raise MemoryError(f"out of host memory keeping the outputs of {function_name!r} after "
                              f"{self.done} of {self.count} calls ({self.arena_length} bytes)")

    cdef list results(self, Plugin plugin, function_name, parse, bint return_exceptions):
        """The outputs (parsed) in input order; a failure raises, or fills its slot."""
        cdef size_t i
        cdef call_result *r
        self.check_memory(function_name)
        out = []
        for i in range(self.done):
            r = &self.results_[i]
            if r.status == CALL_OK:
                data = PyBytes_FromStringAndSize(<const char *>self.arena + self.output_offsets[i], r.output_length)
                out.append(parse_output(data, parse))
                continue
            error = _call_error(plugin, function_name, r)
            if not return_exceptions:
                raise error
            out.append(error)
        return out


cdef list _inputs_as_bytes(list items):
    """The call inputs as bytes; an item that is neither str nor bytes-like is an InputTypeError
    naming its index in ``items`` (callers running a piece of a larger input reindex it)."""
    cdef Py_ssize_t i
    try:
        return [_as_input_bytes(item) for item in items]
    except TypeError:
        for i in range(len(items)):
            checked_input(items[i], i)
        raise


cdef bytes _as_input_bytes(item):
    """A call input as bytes: str is UTF-8 encoded, other buffers are copied once."""
    if PyBytes_CheckExact(item):
        return item
    if isinstance(item, str):
        return PyUnicode_AsUTF8String(item)
    return bytes(memoryview(item))
