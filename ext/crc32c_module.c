/* CPython binding: resumable_media._crc32c.
 *
 * Invariants:
 * - The kernel is chosen once, at import (CPU probe), and never changes.
 * - Data arrives through the buffer protocol (PyBUF_SIMPLE: any C-contiguous
 *   exporter, no copy); the export is held while the GIL is released, so the
 *   exporter cannot resize or unmap the memory under the kernel.
 * - CRC values are ints in [0, 2**32); lengths are unsigned 64-bit.  Bad
 *   arguments raise TypeError / ValueError / BufferError, never crash.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "crc32c.h"

/* Below this many bytes the kernel runs with the GIL held.  Measured with
 * `python3 benchmarks/bench_checksums.py --gil` on the 2-vCPU Zen 3 dev box:
 * releasing for 4 KiB calls cut one thread from ~11 to ~8 GB/s and made two
 * hashing threads slower than one (0.6x); from 16 KiB two threads gained
 * (1.3x), and at >= 256 KiB they scaled (1.5-1.9x) while the hand-off cost
 * vanished next to the ~10 us hash.  (Beside a CPU-bound Python thread any
 * release costs the hasher up to the 5 ms switch interval per call, at every
 * size: that is the price of letting the other thread run.) */
#define DEFAULT_GIL_RELEASE_THRESHOLD ((Py_ssize_t)256 * 1024)

static crc32c_kernel_fn active_kernel = crc32c_slice8;
static const char *active_kernel_name = "slice8";
static crc32c_kernel_fn hw_kernel = NULL;
static const char *hw_kernel_name = NULL;
static Py_ssize_t gil_release_threshold = DEFAULT_GIL_RELEASE_THRESHOLD;

/* ---- argument handling ---------------------------------------------------- */

/* Bind METH_FASTCALL|METH_KEYWORDS arguments to the parameter list `names`. */
static int bind_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames, const char *const *names, Py_ssize_t nrequired,
                     Py_ssize_t ntotal, PyObject **out)
{
    if (nargs > ntotal) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments (%zd given)", fname,
                     ntotal, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < ntotal; i++)
        out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        const char *key = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, k));
        if (key == NULL)
            return -1;
        Py_ssize_t slot = -1;
        for (Py_ssize_t i = 0; i < ntotal; i++)
            if (strcmp(key, names[i]) == 0)
                slot = i;
        if (slot < 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%s'", fname,
                         key);
            return -1;
        }
        if (out[slot] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                         key);
            return -1;
        }
        out[slot] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < nrequired; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname,
                         names[i]);
            return -1;
        }
    }
    return 0;
}

/* Parse a non-negative int no larger than `max`; `desc` says what is expected. */
static int parse_unsigned(PyObject *obj, const char *what, uint64_t max, const char *desc,
                          uint64_t *out)
{
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not '%.200s'", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    uint64_t u = (uint64_t)v;
    if (overflow > 0) {
        u = PyLong_AsUnsignedLongLong(obj);
        if (u == (uint64_t)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            overflow = -1; /* beyond 64 bits: report as out of range */
        }
    }
    if (overflow < 0 || (!overflow && v < 0) || u > max) {
        PyErr_Format(PyExc_ValueError, "%s must be %s, got %R", what, desc, obj);
        return -1;
    }
    *out = u;
    return 0;
}

static int parse_crc(PyObject *obj, const char *what, uint32_t *out)
{
    uint64_t v;
    if (parse_unsigned(obj, what, 0xFFFFFFFFu, "a 32-bit unsigned CRC (0 <= crc < 2**32)", &v) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_length(PyObject *obj, const char *what, uint64_t *out)
{
    return parse_unsigned(obj, what, UINT64_MAX, "a byte count (0 <= length < 2**64)", out);
}

static int get_buffer(PyObject *obj, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) == 0)
        return 0;
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError,
                     "crc32c() argument must be a bytes-like object (bytes, bytearray, "
                     "memoryview, mmap), not '%.200s'",
                     Py_TYPE(obj)->tp_name);
    }
    else if (PyErr_ExceptionMatches(PyExc_BufferError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_BufferError,
                     "crc32c() needs a C-contiguous buffer, and this '%.200s' is not; "
                     "copy non-contiguous data first (e.g. bytes(view))",
                     Py_TYPE(obj)->tp_name);
    }
    return -1;
}

static PyObject *hash_buffer(crc32c_kernel_fn fn, PyObject *data, uint32_t value)
{
    Py_buffer view;
    if (get_buffer(data, &view) < 0)
        return NULL;
    uint32_t crc = value ^ 0xFFFFFFFFu;
    const unsigned char *buf = (const unsigned char *)view.buf;
    size_t len = (size_t)view.len;
    if (view.len >= gil_release_threshold) {
        Py_BEGIN_ALLOW_THREADS
        crc = fn(crc, buf, len);
        Py_END_ALLOW_THREADS
    }
    else {
        crc = fn(crc, buf, len);
    }
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc ^ 0xFFFFFFFFu);
}

/* ---- module functions ----------------------------------------------------- */

PyDoc_STRVAR(crc32c_doc,
"crc32c(data, value=0)\n--\n\n"
"Return the CRC-32C of a C-contiguous buffer, continuing from `value`.\n\n"
"Accepts bytes, bytearray, memoryview (any alignment), mmap and other buffer\n"
"exporters without copying; releases the GIL for large buffers.");

static PyObject *py_crc32c(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    static const char *const names[] = {"data", "value"};
    PyObject *bound[2];
    uint32_t value = 0;
    (void)module;
    if (kwnames == NULL && nargs == 1)
        return hash_buffer(active_kernel, args[0], 0);
    if (bind_args("crc32c", args, nargs, kwnames, names, 1, 2, bound) < 0)
        return NULL;
    if (bound[1] != NULL && parse_crc(bound[1], "value", &value) < 0)
        return NULL;
    return hash_buffer(active_kernel, bound[0], value);
}

PyDoc_STRVAR(crc32c_with_kernel_doc,
"crc32c_with_kernel(kernel, data, value=0)\n--\n\n"
"Like crc32c() but with a named kernel from `available_kernels` (for tests).");

static PyObject *py_crc32c_with_kernel(PyObject *module, PyObject *const *args,
                                       Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"kernel", "data", "value"};
    PyObject *bound[3];
    uint32_t value = 0;
    crc32c_kernel_fn fn = NULL;
    (void)module;
    if (bind_args("crc32c_with_kernel", args, nargs, kwnames, names, 2, 3, bound) < 0)
        return NULL;
    if (!PyUnicode_Check(bound[0])) {
        PyErr_Format(PyExc_TypeError, "kernel must be a str, not '%.200s'",
                     Py_TYPE(bound[0])->tp_name);
        return NULL;
    }
    const char *name = PyUnicode_AsUTF8(bound[0]);
    if (name == NULL)
        return NULL;
    if (strcmp(name, "slice8") == 0)
        fn = crc32c_slice8;
    else if (hw_kernel_name != NULL && strcmp(name, hw_kernel_name) == 0)
        fn = hw_kernel;
    if (fn == NULL) {
        PyErr_Format(PyExc_ValueError, "kernel %R is not available on this CPU", bound[0]);
        return NULL;
    }
    if (bound[2] != NULL && parse_crc(bound[2], "value", &value) < 0)
        return NULL;
    return hash_buffer(fn, bound[1], value);
}

PyDoc_STRVAR(crc32c_combine_doc,
"crc32c_combine(crc_a, crc_b, length_b)\n--\n\n"
"Return the CRC-32C of A+B from crc32c(A), crc32c(B) and len(B), in O(log length_b).");

static PyObject *py_crc32c_combine(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    static const char *const names[] = {"crc_a", "crc_b", "length_b"};
    PyObject *bound[3];
    uint32_t crc_a, crc_b;
    uint64_t length_b;
    (void)module;
    if (bind_args("crc32c_combine", args, nargs, kwnames, names, 3, 3, bound) < 0)
        return NULL;
    if (parse_crc(bound[0], "crc_a", &crc_a) < 0 || parse_crc(bound[1], "crc_b", &crc_b) < 0 ||
        parse_length(bound[2], "length_b", &length_b) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(crc32c_combine_crcs(crc_a, crc_b, length_b));
}

PyDoc_STRVAR(crc32c_combine_many_doc,
"crc32c_combine_many(parts)\n--\n\n"
"Fold an iterable of (crc, length) pairs, in order, into the CRC-32C of the\n"
"concatenated parts (0 for no parts).");

static int combine_pair(PyObject *item, uint32_t *total)
{
    uint32_t crc;
    uint64_t length;
    PyObject *seq = PySequence_Fast(item, "crc32c_combine_many() items must be (crc, length) pairs");
    if (seq == NULL)
        return -1;
    int rc = -1;
    if (PySequence_Fast_GET_SIZE(seq) != 2) {
        PyErr_Format(PyExc_ValueError,
                     "crc32c_combine_many() items must be (crc, length) pairs, got %zd items",
                     PySequence_Fast_GET_SIZE(seq));
    }
    else if (parse_crc(PySequence_Fast_GET_ITEM(seq, 0), "crc", &crc) == 0 &&
             parse_length(PySequence_Fast_GET_ITEM(seq, 1), "length", &length) == 0) {
        *total = crc32c_combine_crcs(*total, crc, length);
        rc = 0;
    }
    Py_DECREF(seq);
    return rc;
}

static PyObject *py_crc32c_combine_many(PyObject *module, PyObject *parts)
{
    uint32_t total = 0;
    (void)module;
    PyObject *it = PyObject_GetIter(parts);
    if (it == NULL)
        return NULL;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        int rc = combine_pair(item, &total);
        Py_DECREF(item);
        if (rc < 0) {
            Py_DECREF(it);
            return NULL;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    return PyLong_FromUnsignedLong(total);
}

PyDoc_STRVAR(set_threshold_doc,
"_set_gil_release_threshold(nbytes)\n--\n\n"
"Set the buffer size from which the GIL is released; return the old value.\n"
"For measuring the threshold only.");

static PyObject *py_set_gil_release_threshold(PyObject *module, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "threshold must be >= 0");
        return NULL;
    }
    PyObject *value = PyLong_FromSsize_t(n);
    if (value == NULL)
        return NULL;
    int rc = PyModule_AddObjectRef(module, "gil_release_threshold", value);
    Py_DECREF(value);
    if (rc < 0)
        return NULL;
    Py_ssize_t old = gil_release_threshold;
    gil_release_threshold = n;
    return PyLong_FromSsize_t(old);
}

static PyMethodDef crc32c_methods[] = {
    {"crc32c", (PyCFunction)(void (*)(void))py_crc32c, METH_FASTCALL | METH_KEYWORDS,
     crc32c_doc},
    {"crc32c_with_kernel", (PyCFunction)(void (*)(void))py_crc32c_with_kernel,
     METH_FASTCALL | METH_KEYWORDS, crc32c_with_kernel_doc},
    {"crc32c_combine", (PyCFunction)(void (*)(void))py_crc32c_combine,
     METH_FASTCALL | METH_KEYWORDS, crc32c_combine_doc},
    {"crc32c_combine_many", py_crc32c_combine_many, METH_O, crc32c_combine_many_doc},
    {"_set_gil_release_threshold", py_set_gil_release_threshold, METH_O, set_threshold_doc},
    {NULL, NULL, 0, NULL},
};

static int crc32c_exec(PyObject *module)
{
    PyObject *kernels = hw_kernel_name ? Py_BuildValue("(ss)", hw_kernel_name, "slice8")
                                       : Py_BuildValue("(s)", "slice8");
    if (kernels == NULL)
        return -1;
    int rc = PyModule_AddObjectRef(module, "available_kernels", kernels);
    Py_DECREF(kernels);
    if (rc < 0)
        return -1;
    if (PyModule_AddStringConstant(module, "kernel", active_kernel_name) < 0 ||
        PyModule_AddIntConstant(module, "gil_release_threshold", (long)gil_release_threshold) < 0)
        return -1;
    return 0;
}

static PyModuleDef_Slot crc32c_slots[] = {
    {Py_mod_exec, (void *)crc32c_exec},
#ifdef Py_GIL_DISABLED
    /* No mutable state is shared between calls except the threshold, which
     * only the measuring helper writes. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(module_doc,
"Native CRC-32C (Castagnoli): SSE4.2 / ARMv8 hardware kernels with 3-way\n"
"interleaving, a portable slicing-by-8 fallback, and O(log n) combine.");

static struct PyModuleDef crc32c_module = {
    PyModuleDef_HEAD_INIT,
    "resumable_media._crc32c",
    module_doc,
    0,
    crc32c_methods,
    crc32c_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__crc32c(void)
{
    static int initialised = 0;
    if (!initialised) {
        crc32c_sw_init();
        hw_kernel = crc32c_hw_probe(&hw_kernel_name);
        if (hw_kernel != NULL) {
            active_kernel = hw_kernel;
            active_kernel_name = hw_kernel_name;
        }
        initialised = 1;
    }
    return PyModuleDef_Init(&crc32c_module);
}
