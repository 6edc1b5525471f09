# _arrow.pxi - Arrow in, Arrow out: call_many over the buffers of pyarrow binary/string arrays.
# Part of extism_fast/_runtime.pyx (included there; one Cython module). The pyarrow-facing half
# (types, pa.Array.from_buffers, combining pieces, the documentation) is extism_fast/scale/arrow.py.

from libc.stdint cimport uintptr_t

#: Items per _ArrowBatch: its bookkeeping (~90 bytes an item) stays in the CPU caches; the pieces
#: are concatenated at the end (one copy of the outputs, far cheaper than the calls).
_ARROW_BATCH_SIZE = 8192

cdef object _ARROW_PY = None
cdef char _EMPTY[1]


cdef object _arrow_py():
    """extism_fast.scale.arrow, imported on first use (importing it does not import pyarrow)."""
    global _ARROW_PY
    if _ARROW_PY is None:
        from extism_fast.scale import arrow
        _ARROW_PY = arrow
    return _ARROW_PY


cdef class _HeapBlock:
    """A malloc'ed block lent to pyarrow through the buffer protocol (``pa.py_buffer``: no copy);
    freed when the last array over it goes."""

    def __getbuffer__(self, Py_buffer *view, int flags):
        PyBuffer_FillInfo(view, self, self.data if self.data != NULL else <void *>_EMPTY, self.size, 1, flags)

    def __releasebuffer__(self, Py_buffer *view):
        pass

    def __dealloc__(self):
        free(self.data)


cdef _HeapBlock _heap_block(void *data, Py_ssize_t size):
    """A block owning ``data`` (NULL only when ``size`` is 0)."""
    cdef _HeapBlock block = _HeapBlock.__new__(_HeapBlock)
    block.data = data
    block.size = size
    return block


cdef _HeapBlock _zeroed_block(size_t size):
    cdef void *data = calloc(size if size else 1, 1)
    if data == NULL:
        raise MemoryError()
    return _heap_block(data, size)


cdef class _ArrowBatch(_Batch):
    """A batch whose calls read the items of an Arrow array in place (or of a list), and whose
    outputs can come back as Arrow buffers. Null items are not called: ``positions`` maps each
    call to its item."""

    def __cinit__(self, list items):
        self.length = self.count
        self.first_null = -1

    def __dealloc__(self):
        free(self.positions)

    cdef int point_at(self, array, int width) except -1:
        """Point the calls at the items of ``array`` (binary-like, offsets of ``width`` bytes),
        honouring its offset (a slice) and validity bitmap; the batch keeps the buffers alive."""
        cdef size_t n = len(array), start = array.offset, nulls = array.null_count, i, j = 0, p
        cdef const uint8_t *validity = NULL
        cdef const uint8_t *offsets
        cdef const uint8_t *data = <const uint8_t *>_EMPTY
        cdef int64_t data_size = 0, a, b
        buffers = array.buffers()
        self.items = [array, buffers]
        self.length = n
        if n == 0:
            return self._allocate(0)
        if buffers[1] is None or buffers[1].size < (start + n + 1) * width:
            raise ValueError("Arrow input: its offsets buffer is shorter than the array")
        offsets = <const uint8_t *><uintptr_t>buffers[1].address
        if buffers[2] is not None and buffers[2].size:
            data = <const uint8_t *><uintptr_t>buffers[2].address
            data_size = buffers[2].size
        if nulls:
            if buffers[0] is None or buffers[0].size * 8 < start + n:
                raise ValueError("Arrow input: its validity bitmap is shorter than the array")
            validity = <const uint8_t *><uintptr_t>buffers[0].address
            self.positions = <int64_t *>malloc((n - nulls + 1) * sizeof(int64_t))
            if self.positions == NULL:
                raise MemoryError()
        self._allocate(n - nulls)
        for i in range(n):
            p = start + i
            if validity != NULL and not (validity[p >> 3] >> (p & 7)) & 1:
                if self.first_null < 0:
                    self.first_null = i
                continue
            if width == 4:
                a, b = (<const int32_t *>offsets)[p], (<const int32_t *>offsets)[p + 1]
            else:
                a, b = (<const int64_t *>offsets)[p], (<const int64_t *>offsets)[p + 1]
            if a < 0 or b < a or b > data_size or j == self.count:
                raise ValueError(f"Arrow input: item {i} (offsets {a}..{b}) is outside its data buffer "
                                 f"({data_size} bytes) or its null count is wrong")
            self.inputs[j] = data + a
            self.input_lengths[j] = b - a
            if self.positions != NULL:
                self.positions[j] = i
            j += 1
        if j != self.count:
            raise ValueError(f"Arrow input: its null count ({nulls}) does not match its validity bitmap")
        return 0

    cdef int64_t position(self, size_t call):
        return self.positions[call] if self.positions != NULL else <int64_t>call

    cdef raise_first_failure(self, Plugin plugin, function_name, int64_t first_index):
        """Without return_exceptions: the failure that stopped the batch (if any), with its index."""
        cdef call_result *r
        if self.done == 0 or self.results_[self.done - 1].status == CALL_OK:
            return
        r = &self.results_[self.done - 1]
        error = _call_error(plugin, function_name, r)
        index = first_index + self.position(self.done - 1)
        failure = type(error)(f"input {index}: {error}")
        failure.input_index, failure.item_error = index, error  # for callers that name items their way
        raise failure from None

    cdef list list_output(self, Plugin plugin, function_name, parse, bint return_exceptions,
                          int64_t first_index):
        """The outputs as a list (``parse``d), a null item's slot holding its ValueError."""
        out = self.results(plugin, function_name, parse, return_exceptions)
        if self.positions == NULL:
            return out
        full = [ValueError(f"input {first_index + p} is null") for p in range(self.length)]
        cdef size_t j
        for j in range(self.count):
            full[self.positions[j]] = out[j]
        return full

    cdef arrow_output(self, Plugin plugin, function_name, out_type, bint return_exceptions, int64_t first_index):
        """The outputs as an Arrow array over buffers filled here (the data buffer is the batch's
        arena, handed over); with ``return_exceptions``, a struct array {output, error}."""
        cdef size_t n = self.length, p, j = 0, nulls = 0
        cdef _HeapBlock offsets_block = _zeroed_block((n + 1) * sizeof(int64_t))
        cdef _HeapBlock validity_block = _zeroed_block((n + 7) // 8)
        cdef int64_t *offsets = <int64_t *>offsets_block.data
        cdef uint8_t *validity = <uint8_t *>validity_block.data
        cdef int64_t end = 0
        cdef bint called
        cdef call_result *r
        self.check_memory(function_name)
        arrow = _arrow_py()
        failed, errors = [], []
        for p in range(n):
            called = self.positions == NULL or (j < self.count and self.positions[j] == <int64_t>p)
            r = &self.results_[j]
            if called and j < self.done and r.status == CALL_OK:
                end += r.output_length
                validity[p >> 3] |= 1 << (p & 7)
            else:
                nulls += 1
                if return_exceptions:
                    failed.append(p)
                    errors.append(arrow.error_text(self._item_error(plugin, function_name, r, called,
                                                                    first_index + p)))
            j += called
            offsets[p + 1] = end
        if <size_t>end != self.arena_length:
            raise AssertionError(f"Arrow output: {end} bytes of outputs, {self.arena_length} kept")
        data_block = _heap_block(self.arena, self.arena_length)
        self.arena = NULL  # now the array's
        outputs = arrow.from_buffers(out_type, n, nulls, validity_block if nulls else None,
                                     offsets_block, data_block)
        if not return_exceptions:
            return outputs
        return arrow.with_errors(outputs, _string_column(n, failed, errors))

    cdef _item_error(self, Plugin plugin, function_name, call_result *r, bint called, int64_t index):
        if not called:
            return ValueError(f"input {index} is null")
        error = _call_error(plugin, function_name, r)
        return error


cdef object _string_column(size_t n, list positions, list texts):
    """A large_string array of ``n`` items: ``texts`` at ``positions`` (ascending), nulls elsewhere."""
    cdef size_t p, k = 0, count = len(positions)
    cdef _HeapBlock offsets_block = _zeroed_block((n + 1) * sizeof(int64_t))
    cdef _HeapBlock validity_block = _zeroed_block((n + 7) // 8)
    cdef int64_t *offsets = <int64_t *>offsets_block.data
    cdef uint8_t *validity = <uint8_t *>validity_block.data
    cdef int64_t end = 0
    encoded = [text.encode("utf-8", "replace") for text in texts]
    for p in range(n):
        if k < count and <size_t>positions[k] == p:
            end += len(encoded[k])
            validity[p >> 3] |= 1 << (p & 7)
            k += 1
        offsets[p + 1] = end
    arrow = _arrow_py()
    return arrow.from_buffers(arrow.output_type("arrow_string"), n, n - count, validity_block,
                              offsets_block, b"".join(encoded))


cdef object _run_arrow_batch(Plugin plugin, function_name, _ArrowBatch batch, parse,
                             bint return_exceptions, out_type, int64_t first_index):
    if batch.first_null >= 0 and not return_exceptions:
        raise ValueError(f"input {first_index + batch.first_null} is null: drop or fill the nulls "
                         f"of an Arrow input, or pass return_exceptions=True")
    if batch.count:
        plugin._run(function_name, batch, return_exceptions)
    if not return_exceptions:
        batch.raise_first_failure(plugin, function_name, first_index)
    if out_type is None:
        return batch.list_output(plugin, function_name, parse, return_exceptions, first_index)
    return batch.arrow_output(plugin, function_name, out_type, return_exceptions, first_index)


def _arrow_call_many(Plugin plugin, function_name, inputs, parse, bint return_exceptions, output,
                     int64_t first_index):
    """Plugin.call_many with an Arrow input or output (extism_fast/scale/arrow.py says what each gives).
    ``first_index``: the index of ``inputs[0]`` in the caller's whole input, for messages
    (PluginPool.map runs pieces)."""
    cdef _ArrowBatch batch
    arrow = _arrow_py()
    out_type = arrow.output_type(output)
    if out_type is not None and parse is not bytes:
        raise ValueError(f"parse applies to list outputs only, not to output={output!r}")
    plugin._begin(function_name)  # fail fast, before reading the inputs
    if not arrow.is_arrow(inputs):  # a list in, Arrow out: one batch
        items = list(inputs)
        try:
            batch = _ArrowBatch(items)
        except InputTypeError as exc:
            raise reindexed(exc, first_index, items) from None
        return arrow.combine([_run_arrow_batch(plugin, function_name, batch, parse, return_exceptions,
                                               out_type, first_index)], False, out_type, return_exceptions)
    chunks, width, chunked = arrow.input_chunks(inputs)
    pieces = []
    for chunk in chunks:
        for start in range(0, len(chunk), _ARROW_BATCH_SIZE):
            batch = _ArrowBatch(None)
            batch.point_at(chunk.slice(start, _ARROW_BATCH_SIZE) if start or len(chunk) > _ARROW_BATCH_SIZE
                           else chunk, width)
            pieces.append(_run_arrow_batch(plugin, function_name, batch, parse, return_exceptions,
                                           out_type, first_index))
            first_index += batch.length
    return arrow.combine(pieces, chunked, out_type, return_exceptions)
