# _current_plugin.pxi - Memory and CurrentPlugin: what host functions see of the calling plugin.
# Part of extism_fast/_runtime.pyx (included there; one Cython module).

# ---------------------------------------------------------------------------------------------
# Memory handles for host functions
# ---------------------------------------------------------------------------------------------

class Memory:
    """A block of kernel memory: ``offset`` and ``length`` (as the official SDK's Memory)."""

    __slots__ = ("offset", "length")

    def __init__(self, offs, length):
        self.offset = offs
        self.length = length

    def __len__(self):
        return self.length

    def __repr__(self):
        return f"Memory(offset={self.offset}, length={self.length})"


cdef class CurrentPlugin:
    """The plugin that is calling a host function: access to its kernel memory.

    Valid only while one of that plugin's host functions runs (on that thread): using it at any
    other time raises Error. It refers to its plugin without owning it, so the two do not keep each
    other alive.
    """

    @staticmethod
    cdef CurrentPlugin _for(Plugin plugin):
        cdef CurrentPlugin cp = CurrentPlugin.__new__(CurrentPlugin)
        cp.owner = <void *>plugin
        return cp

    cdef kernel *_kernel(self) except NULL:
        if current_instance == NULL or instance_owner(current_instance) != self.owner:
            raise Error("CurrentPlugin is only usable while its plugin is calling a host function")
        return instance_kernel(current_instance)

    def memory(self, mem):
        """A writable KernelBuffer of the bytes of ``mem`` (a Memory) in kernel memory, valid
        until the host function returns (the official SDK's cffi buffer semantics)."""
        cdef kernel *k = self._kernel()
        cdef uint64_t offset = mem.offset, length = mem.length
        cdef uint8_t *p = kernel_ptr(k, offset, length) if length else NULL
        if p == NULL and length:
            raise Error(f"memory [{offset}, {offset}+{length}) is outside kernel memory")
        cdef Plugin plugin = <Plugin>self.owner
        buf = KernelBuffer._over(plugin, p, length, True)
        if plugin._host_buffers is None:
            plugin._host_buffers = []
        plugin._host_buffers.append(buf)
        return buf

    def alloc(self, size):
        """Allocate ``size`` bytes of kernel memory; raises MemoryLimitError when it cannot."""
        cdef kernel *k = self._kernel()
        cdef uint64_t offset = kernel_alloc(k, size)
        if offset == 0 and size != 0:
            raise MemoryLimitError(f"cannot allocate {size} bytes: {_alloc_failure(<Plugin>self.owner)}")
        return Memory(offset, size)

    def free(self, mem):
        """Free a block (a Memory or an offset). Unknown offsets are ignored."""
        kernel_free(self._kernel(), mem.offset if isinstance(mem, Memory) else int(mem))

    def memory_at_offset(self, offs):
        """The Memory of the block starting at ``offs`` (an int or a Val); length 0 if none."""
        cdef kernel *k = self._kernel()  # first: _Val is bound once a host function runs
        if isinstance(offs, _Val):
            offs = offs.value
        return Memory(offs, kernel_length(k, offs))

    def host_context(self):
        """The ``host_context`` object given to the current ``Plugin.call``, or None."""
        self._kernel()
        return (<Plugin>self.owner)._host_context

    def input_buffer(self, input):
        """Writable KernelBuffer of the block a parameter (Val with an offset) points at."""
        return self.memory(self.memory_at_offset(input))

    def input_bytes(self, input):
        """The bytes of the block a parameter points at."""
        cdef kernel *k = self._kernel()
        cdef uint64_t offset = input.value if isinstance(input, _Val) else input
        cdef uint64_t length = kernel_length(k, offset)
        if length == 0:
            return b""
        return PyBytes_FromStringAndSize(<const char *>kernel_ptr(k, offset, length), length)

    def input_string(self, input):
        """The UTF-8 text of the block a parameter points at."""
        return self.input_bytes(input).decode()

    def return_bytes(self, output, b):
        """Copy ``b`` into a new block and store its offset in ``output`` (a Val)."""
        cdef kernel *k = self._kernel()
        cdef Py_buffer data
        cdef uint64_t n, offset
        _byte_buffer(b, &data)
        try:
            n = data.len
            offset = kernel_alloc_bytes(k, <const uint8_t *>data.buf, n) if n else 0
        finally:
            PyBuffer_Release(&data)
        if offset == 0 and n != 0:
            raise MemoryLimitError(f"cannot allocate {n} bytes: {_alloc_failure(<Plugin>self.owner)}")
        output.value = offset

    def return_string(self, output, s):
        """Like return_bytes for UTF-8 text."""
        self.return_bytes(output, s.encode())
