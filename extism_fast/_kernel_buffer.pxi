# _kernel_buffer.pxi - KernelBuffer: bytes in a plugin's kernel memory, handed to Python in place.
# Part of extism_fast/_runtime.pyx (included there; one Cython module).

cdef const uint8_t _NO_BYTES[1]


cdef class _DetachedStore:
    """A plugin's dropped wasmtime store (store_drop handed it over), kept while memoryviews point
    into its memories; deleted with the last of them."""

    def __dealloc__(self):
        store_delete_detached(self.store)


@cython.final
cdef class KernelBuffer:
    """Bytes in a plugin's kernel memory, without a copy: what ``CurrentPlugin.memory()``,
    ``CurrentPlugin.input_buffer()`` and ``Plugin.call(..., parse=None)`` return.

    It behaves as the official SDK's cffi buffer: ``len(buf)``, ``bytes(buf)``, ``buf[i]`` (a
    1-byte bytes), ``buf[a:b]`` and ``buf[:]`` (bytes), comparisons with bytes-like objects, the
    buffer protocol (``memoryview(buf)``), and ``buf[i] = b"x"`` / ``buf[a:b] = data`` when
    writable (the host-function buffers). Also ``tobytes()`` and ``readonly``, as a memoryview.

    It is valid while its host function runs (``memory()``, ``input_buffer()``) or until its
    plugin's next call (``parse=None``); after that every use raises ValueError. Indexing,
    slicing, ``len`` and comparisons read kernel memory in place. A memoryview of an output is a
    view of a copy made when the first one is taken, so it never changes; a memoryview of a
    host-function buffer writes to kernel memory, and one kept after the host function returns
    sees the plugin's later changes but never freed memory: when the store goes (after `_start`,
    a failed start, close), store_drop hands it to the views (Plugin._keep_store). Copies and
    pickles are refused (TypeError), as for the official SDK's cffi buffers.
    """

    @staticmethod
    cdef KernelBuffer _over(Plugin plugin, uint8_t *data, uint64_t length, bint writable):
        cdef KernelBuffer buf = KernelBuffer.__new__(KernelBuffer)
        buf.plugin = plugin
        buf.data = data if length else <uint8_t *>_NO_BYTES
        buf.length = length
        buf.writable = writable
        buf.valid = True
        return buf

    cdef int _check(self) except -1:
        if not self.valid:
            raise ValueError("this buffer of kernel memory is no longer valid: it lasts while its host "
                             "function runs (memory(), input_buffer()) or until the plugin's next call "
                             "(parse=None); copy it with bytes() to keep it")
        return 0

    cdef bint _invalidate(self):
        """Stop serving; True when memoryviews into kernel memory are still alive (then the
        memory they point into must outlive them)."""
        self.valid = False
        return self.writable and self.exports > 0

    @property
    def readonly(self) -> bool:
        """True for outputs (``parse=None``), False for host-function buffers."""
        return not self.writable

    def __len__(self):
        self._check()
        return self.length

    def __bytes__(self):
        self._check()
        return PyBytes_FromStringAndSize(<const char *>self.data, self.length)

    def tobytes(self) -> bytes:
        """A copy of the bytes (as ``bytes(buf)``)."""
        return self.__bytes__()

    cdef Py_ssize_t _index(self, Py_ssize_t i) except -1:
        if i < 0:
            i += self.length
        if i < 0 or i >= self.length:
            raise IndexError("buffer index out of range")
        return i

    cdef tuple _span(self, slice s):
        start, stop, step = s.indices(self.length)
        if step != 1:
            raise TypeError("buffer doesn't support slicing with step != 1")
        return start, max(start, stop)

    # Indexing converts the key (and the value) first, which may run Python code (__index__,
    # __buffer__) that closes the plugin or ends the call; the validity check comes last, with
    # nothing that can run Python code between it and the memory access.

    def __getitem__(self, key):
        cdef Py_ssize_t start, stop = 0
        cdef bint is_slice = isinstance(key, slice)
        if is_slice:
            start, stop = self._span(key)
        else:
            start = PyNumber_AsSsize_t(key, IndexError)
        self._check()
        if is_slice:
            return PyBytes_FromStringAndSize(<const char *>self.data + start, stop - start)
        start = self._index(start)
        return PyBytes_FromStringAndSize(<const char *>self.data + start, 1)

    def __setitem__(self, key, value):
        cdef Py_ssize_t start, stop = 0
        cdef Py_buffer source
        if not self.writable:
            raise TypeError("plugin output buffers are read-only")
        cdef bint is_slice = isinstance(key, slice)
        if is_slice:
            start, stop = self._span(key)
        else:
            start = PyNumber_AsSsize_t(key, IndexError)
            if not isinstance(value, (bytes, bytearray)) or len(value) != 1:
                raise TypeError(f"must assign a bytes of length 1, not {type(value).__name__}")
        PyObject_GetBuffer(memoryview(value).cast("B"), &source, PyBUF_SIMPLE)
        try:
            self._check()
            if not is_slice:
                start = self._index(start)
                stop = start + 1
            if source.len != stop - start:
                raise ValueError(f"cannot assign {source.len} bytes to a slice of {stop - start}")
            if stop > start:  # the value may be a view of this very buffer
                memmove(self.data + start, source.buf, stop - start)
        finally:
            PyBuffer_Release(&source)

    def __richcmp__(self, other, int op):
        try:
            theirs = bytes(memoryview(other))
        except TypeError:
            return NotImplemented
        mine = self.__bytes__()
        return {0: mine < theirs, 1: mine <= theirs, 2: mine == theirs, 3: mine != theirs,
                4: mine > theirs, 5: mine >= theirs}[op]

    __hash__ = None

    def __repr__(self):
        state = f"{self.length} bytes" if self.valid else "released"
        return f"<extism_fast.KernelBuffer {state}>"

    def __getbuffer__(self, Py_buffer *buffer, int flags):
        self._check()
        cdef void *data = self.data
        if not self.writable:
            if flags & PyBUF_WRITABLE:
                raise BufferError("plugin output buffers are read-only")
            if self._copy is None:  # the plugin's next call may reuse this memory: view a copy
                self._copy = PyBytes_FromStringAndSize(<const char *>self.data, self.length)
            data = <void *>PyBytes_AS_STRING(self._copy)
        PyBuffer_FillInfo(buffer, self, data, self.length, not self.writable, flags)
        self.exports += 1

    def __releasebuffer__(self, Py_buffer *buffer):
        self.exports -= 1
