/* The compiled tracing core: the collector's core interface, the open-span
 * handle, span() and the hot functions of the module API.
 *
 * It implements exactly what harn_async_trace/_core/_pure.py,
 * _pure_scoped.py and _pure_api.py do in Python (the fallback), with the
 * same results, errors and ids; docs/performance.md explains the design.
 *
 * Rules this file keeps:
 *  - The GIL is assumed (free-threaded builds are unsupported: the package
 *    falls back to the pure core there, see setup.py).
 *  - No static mutable globals: everything lives in the module state, and
 *    types are heap types made per module (subinterpreters get their own).
 *  - Every call back into Python (clocks, trace ids, listeners, __str__)
 *    is made holding strong references to what it needs afterwards, and the
 *    collector's state is never touched through pointers taken before the
 *    call: a reset() may run inside it (the `generation` counter says so).
 *  - Open spans (handles) support the cyclic GC; finished spans are plain
 *    C rows (ints and exact strings): nothing for the GC to traverse.
 *  - Clocks are read through their Python `monotonic_ns` (for the system
 *    clock that is time.monotonic_ns itself), so times equal the pure core's.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>

#if defined(Py_GIL_DISABLED)
#error "harn_async_trace's compiled core assumes the GIL; use the pure core (HARN_TRACE_PURE=1)"
#endif

/* CPython's monotonic clock, the one time.monotonic_ns() reads (same
 * source, same value), without the call and the int object. */
#if PY_VERSION_HEX >= 0x030D0000
static inline int64_t
monotonic_clock_ns(void)
{
    PyTime_t t;
    (void)PyTime_MonotonicRaw(&t);
    return (int64_t)t;
}
static inline PyObject *
dict_pop(PyObject *dict, PyObject *key)
{
    PyObject *value;
    int found = PyDict_Pop(dict, key, &value);
    if (found <= 0) {
        return found < 0 ? NULL : Py_NewRef(Py_None);
    }
    return value;
}
#else
static inline int64_t
monotonic_clock_ns(void)
{
    return (int64_t)_PyTime_GetMonotonicClock();
}
static inline PyObject *
dict_pop(PyObject *dict, PyObject *key)
{
    return _PyDict_Pop(dict, key, Py_None);
}
#endif

/* ------------------------------------------------------------------------ */
/* module state                                                             */

enum {
    SLOT_BINDING, SLOT_DURATION, SLOT_EVENTS, SLOT_KIND, SLOT_LANE, SLOT_LINKS,
    SLOT_METADATA, SLOT_NAME, SLOT_PARENT, SLOT_SPAN_ID, SLOT_START, SLOT_TRACE,
    SLOT_COUNT
};

static const char *const slot_names[SLOT_COUNT] = {
    "_binding", "_duration_ns", "_events", "_kind", "_lane", "_links",
    "_metadata", "_name", "_parent_id", "_span_id", "_start_ns", "_trace_id",
};

enum {
    ARG_KIND, ARG_NAME, ARG_LINKS, ARG_DETACHED, ARG_PUSH, ARG_NEW_TRACE, ARG_METADATA,
    ARG_INSTANT, ARG_COUNT
};

static const char *const arg_names[ARG_COUNT] = {
    "kind", "name", "links", "detached", "push", "new_trace", "metadata", "instant",
};

typedef struct {
    PyTypeObject *CollectorType;
    PyTypeObject *HandleType;
    PyTypeObject *ChainBindingType;
    PyTypeObject *ScopeType;
    PyTypeObject *ReadyType;
    int configured;
    /* Set by _set_current_var (context.py creates the var). */
    PyObject *current_var;
    /* Given by _configure (see __init__.py). */
    PyObject *current_clock, *system_clock, *SystemClock;
    PyObject *events_dict; /* events.py's globals: read per event, as the pure core does */
    PyObject *Span, *slots[SLOT_COUNT];
    PyObject *ClockBinding, *SpanLink, *SpanEvent, *SpanKind, *kind_by_value, *coerce_kind;
    PyObject *new_trace_id, *CancelledError, *decorate, *time_monotonic_ns;
    /* Made here. */
    PyObject *disabled;   /* the handle of spans entered while tracing is off */
    PyObject *ready_none; /* an awaitable that gives None (span.__aexit__) */
    PyObject *zero;
    PyObject *s_start_subs, *s_end_subs, *s_monotonic_ns, *s_wall_ns, *s_trace_id;
    PyObject *s_cancelled, *s_error, *s_error_type, *s_Cancelled, *s_name;
    PyObject *s_emit_start, *s_emit_end, *s_SpanStartEvent, *s_SpanEndEvent;
    PyObject *args[ARG_COUNT];
} State;

static struct PyModuleDef ccore_module;

static inline State *
module_state(PyObject *module)
{
    return (State *)PyModule_GetState(module);
}

/* ------------------------------------------------------------------------ */
/* objects                                                                  */

typedef struct Collector Collector;

/* An open span, and the handle `with span() as handle` gives. After the span
 * ends, `collector` is NULL: that is how chains skip it. */
typedef struct Handle {
    PyObject_HEAD
    PyObject *span_id;      /* int */
    Collector *collector;   /* strong; NULL once ended (or disabled) */
    struct Handle *prev;    /* the span below this one on the chain */
    PyObject *trace_id;
    PyObject *kind;         /* a SpanKind member */
    PyObject *name;         /* exact str */
    PyObject *metadata;     /* dict or NULL */
    PyObject *links;        /* list or NULL */
    PyObject *events;       /* list or NULL */
    int64_t id, parent_id, lane, start_ns, duration_ns;
    Py_ssize_t binding;     /* index in the collector's bindings */
    char has_parent;
} Handle;

/* How one clock's readings become span times, per collector. */
typedef struct {
    PyObject *clock;
    PyObject *now;          /* clock.monotonic_ns, bound once */
    PyObject *object;       /* the model.ClockBinding that Span records carry */
    int64_t base_ns, wall_offset_ns;
    /* `now` is time.monotonic_ns itself: read CPython's monotonic clock
     * directly (the very function time.monotonic_ns reads), no call. */
    int direct;
} Binding;

enum { ROW_PARENT = 1, ROW_META = 2, ROW_LINKS = 4, ROW_EVENTS = 8, ROW_ODD_TRACE = 16 };

/* A finished span: no Python object, no GC tracking. `kind` is borrowed
 * (enum members live as long as SpanKind, which the state holds). */
typedef struct {
    int64_t span_id, parent_id, lane, start_ns, duration_ns;
    PyObject *name;         /* strong, exact str */
    PyObject *trace_id;     /* strong; exact str unless ROW_ODD_TRACE */
    PyObject *kind;
    uint32_t binding;
    uint32_t flags;
} Row;

struct Collector {
    PyObject_HEAD
    State *state;
    PyObject *module;       /* strong: keeps the state alive */
    PyObject *chain;        /* ContextVar: the innermost pushed handle */
    PyObject *open;         /* dict: id -> Handle */
    PyObject *meta_table, *links_table, *events_table;
    PyObject *trace_id;
    PyObject *binding_index; /* dict: id(clock) -> index in bindings */
    Binding *bindings;
    Py_ssize_t nbindings, bindings_cap;
    PyObject *last_clock;   /* borrowed (held by bindings) */
    Py_ssize_t last_binding;
    Row *rows;
    Py_ssize_t nrows, rows_cap, odd_rows;
    int64_t next_id;
    int64_t system_mono, system_wall;
    uint64_t generation;    /* bumped by every reset() */
    Py_ssize_t max_spans, max_events, max_links, max_metadata;
    Py_ssize_t dropped_spans, dropped_events, dropped_links, dropped_metadata;
    char enabled;
};

typedef struct {
    PyObject_HEAD
    PyObject *chain;
    PyObject *node;         /* a Handle or None */
    PyObject *token;
} ChainBinding;

/* span(kind, name, ...): a reusable scope; each entry is its own span. */
typedef struct {
    PyObject_HEAD
    PyObject *kind, *name, *links, *metadata; /* links/metadata: NULL when none */
    PyObject *handle;       /* the open entry (or NULL) */
    PyObject *more;         /* the other open entries: list or NULL */
    char detached, new_trace, plain;
} Scope;

/* An awaitable that is done at once: `await ready` gives `value`. */
typedef struct {
    PyObject_HEAD
    PyObject *value;
} Ready;

static inline State *
handle_state(PyObject *obj)
{
    return (State *)PyType_GetModuleState(Py_TYPE(obj));
}

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */

static inline int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int
read_int64(PyObject *value, const char *what, int64_t *out)
{
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s must return an int, got %R", what, value);
        return -1;
    }
    long long v = PyLong_AsLongLong(value);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/* Call `func()` (held strongly across the call) and read an int64. */
static int
call_int64(PyObject *func, const char *what, int64_t *out)
{
    Py_INCREF(func);
    PyObject *result = PyObject_CallNoArgs(func);
    Py_DECREF(func);
    if (result == NULL) {
        return -1;
    }
    int status = read_int64(result, what, out);
    Py_DECREF(result);
    return status;
}

static PyObject *
new_id_or_none(int has, int64_t value)
{
    if (!has) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong(value);
}

static inline int
events_listening(State *st, PyObject *name)
{
    PyObject *subs = PyDict_GetItemWithError(st->events_dict, name); /* borrowed */
    if (subs == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    return PyObject_IsTrue(subs);
}

/* kind as a SpanKind member (new reference), else TypeError. */
static PyObject *
checked_kind(State *st, PyObject *kind)
{
    if (Py_TYPE(kind) == (PyTypeObject *)st->SpanKind) {
        Py_INCREF(kind);
        return kind;
    }
    if (PyUnicode_CheckExact(kind)) {
        PyObject *found = PyDict_GetItemWithError(st->kind_by_value, kind);
        if (found != NULL) {
            Py_INCREF(found);
            return found;
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    return PyObject_CallOneArg(st->coerce_kind, kind);
}

/* name as an exact str (new reference), else TypeError. */
static PyObject *
checked_name(PyObject *name)
{
    if (PyUnicode_CheckExact(name)) {
        Py_INCREF(name);
        return name;
    }
    if (PyUnicode_Check(name)) {
        return PyUnicode_FromObject(name);
    }
    PyErr_Format(PyExc_TypeError, "name must be a str, got %s: %R", Py_TYPE(name)->tp_name,
                 name);
    return NULL;
}

/* Match FASTCALL keyword names against `want` (indexes into st->args).
 * `out` has one slot per wanted argument, filled with borrowed refs. */
static int
parse_args(State *st, const char *fname, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames, const int *want, int nwant, int nrequired, PyObject **out)
{
    if (nargs > nwant) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fname,
                     nwant, nargs);
        return -1;
    }
    for (int i = 0; i < nwant; i++) {
        out[i] = i < nargs ? args[i] : NULL;
    }
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int found = -1;
        for (int i = 0; i < nwant && found < 0; i++) {
            if (key == st->args[want[i]]) {
                found = i;
            }
        }
        for (int i = 0; i < nwant && found < 0; i++) {
            int eq = PyUnicode_Compare(key, st->args[want[i]]);
            if (eq == -1 && PyErr_Occurred()) {
                return -1;
            }
            if (eq == 0) {
                found = i;
            }
        }
        if (found < 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%S'", fname,
                         key);
            return -1;
        }
        if (out[found] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%S'", fname,
                         key);
            return -1;
        }
        out[found] = args[nargs + k];
    }
    for (int i = 0; i < nrequired; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname,
                         arg_names[want[i]]);
            return -1;
        }
    }
    return 0;
}

static int
truth(PyObject *value, int missing)
{
    return value == NULL ? missing : PyObject_IsTrue(value);
}

/* ------------------------------------------------------------------------ */
/* clock bindings                                                           */

static void
clear_bindings(Binding *bindings, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(bindings[i].clock);
        Py_XDECREF(bindings[i].now);
        Py_XDECREF(bindings[i].object);
    }
    PyMem_Free(bindings);
}

/* The index of `clock`'s binding, made on first use (may call Python). */
static Py_ssize_t
binding_for(Collector *self, PyObject *clock)
{
    State *st = self->state;
    PyObject *key = PyLong_FromVoidPtr(clock);
    if (key == NULL) {
        return -1;
    }
    PyObject *found = PyDict_GetItemWithError(self->binding_index, key);
    if (found != NULL) {
        Py_ssize_t index = PyLong_AsSsize_t(found);
        if (index >= 0 && index < self->nbindings && self->bindings[index].clock == clock) {
            Py_DECREF(key);
            self->last_clock = clock;
            self->last_binding = index;
            return index;
        }
    }
    else if (PyErr_Occurred()) {
        Py_DECREF(key);
        return -1;
    }
    uint64_t generation = self->generation;
    int64_t base_ns, wall_offset_ns;
    int is_system = PyObject_IsInstance(clock, st->SystemClock);
    if (is_system < 0) {
        Py_DECREF(key);
        return -1;
    }
    Py_INCREF(clock);
    PyObject *now = PyObject_GetAttr(clock, st->s_monotonic_ns);
    if (now == NULL) {
        goto fail;
    }
    if (is_system) {
        base_ns = self->system_mono;
        wall_offset_ns = self->system_wall;
    }
    else {
        /* Mock (or custom) clocks: their own monotonic time is the span time. */
        PyObject *wall_fn = PyObject_GetAttr(clock, st->s_wall_ns);
        if (wall_fn == NULL) {
            goto fail;
        }
        int64_t wall, mono;
        int status = call_int64(wall_fn, "clock.wall_ns()", &wall);
        Py_DECREF(wall_fn);
        if (status < 0 || call_int64(now, "clock.monotonic_ns()", &mono) < 0) {
            goto fail;
        }
        base_ns = 0;
        wall_offset_ns = wall - mono;
    }
    PyObject *object = PyObject_CallFunction(st->ClockBinding, "OLL", clock,
                                             (long long)base_ns, (long long)wall_offset_ns);
    if (object == NULL) {
        goto fail;
    }
    if (self->generation != generation) {
        /* A reset ran inside the calls above: the system epoch moved. */
        Py_DECREF(object);
        Py_DECREF(now);
        Py_DECREF(clock);
        Py_DECREF(key);
        return binding_for(self, clock);
    }
    if (self->nbindings == self->bindings_cap) {
        Py_ssize_t cap = self->bindings_cap ? self->bindings_cap * 2 : 4;
        Binding *grown = PyMem_Realloc(self->bindings, cap * sizeof(Binding));
        if (grown == NULL) {
            Py_DECREF(object);
            PyErr_NoMemory();
            goto fail;
        }
        self->bindings = grown;
        self->bindings_cap = cap;
    }
    Py_ssize_t index = self->nbindings;
    PyObject *value = PyLong_FromSsize_t(index);
    if (value == NULL || PyDict_SetItem(self->binding_index, key, value) < 0) {
        Py_XDECREF(value);
        Py_DECREF(object);
        goto fail;
    }
    Py_DECREF(value);
    Py_DECREF(key);
    Binding *binding = &self->bindings[index];
    binding->clock = clock; /* the references taken above move in */
    binding->now = now;
    binding->object = object;
    binding->base_ns = base_ns;
    binding->wall_offset_ns = wall_offset_ns;
    binding->direct = now == st->time_monotonic_ns;
    self->nbindings++;
    self->last_clock = clock;
    self->last_binding = index;
    return index;
fail:
    Py_XDECREF(now);
    Py_DECREF(clock);
    Py_DECREF(key);
    return -1;
}

/* The binding's clock now, in span time (may call Python). */
static inline int
binding_now(Collector *self, Py_ssize_t index, int64_t *out)
{
    int64_t base = self->bindings[index].base_ns;
    int64_t raw;
    if (self->bindings[index].direct) {
        *out = (int64_t)monotonic_clock_ns() - base;
        return 0;
    }
    if (call_int64(self->bindings[index].now, "clock.monotonic_ns()", &raw) < 0) {
        return -1;
    }
    *out = raw - base;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* building Span records                                                    */

static int
set_slot(State *st, PyObject *span, int slot, PyObject *value)
{
    /* value: a new reference, consumed (NULL means an error happened) */
    if (value == NULL) {
        return -1;
    }
    PyObject *descr = st->slots[slot];
    int status = Py_TYPE(descr)->tp_descr_set(descr, span, value);
    Py_DECREF(value);
    return status;
}

static inline PyObject *
ref(PyObject *value)
{
    if (value == NULL) {
        value = Py_None;
    }
    Py_INCREF(value);
    return value;
}

/* A model.Span from a finished span's fields (references are borrowed). */
static PyObject *
build_span(State *st, int64_t span_id, int has_parent, int64_t parent_id, PyObject *kind,
           PyObject *name, int64_t start_ns, int64_t duration_ns, int64_t lane,
           PyObject *trace_id, PyObject *binding_object, PyObject *metadata, PyObject *links,
           PyObject *events)
{
    PyTypeObject *type = (PyTypeObject *)st->Span;
    Py_INCREF(binding_object);
    PyObject *span = type->tp_alloc(type, 0);
    if (span == NULL) {
        Py_DECREF(binding_object);
        return NULL;
    }
    if (set_slot(st, span, SLOT_BINDING, binding_object) < 0
        || set_slot(st, span, SLOT_TRACE, ref(trace_id)) < 0
        || set_slot(st, span, SLOT_SPAN_ID, PyLong_FromLongLong(span_id)) < 0
        || set_slot(st, span, SLOT_PARENT, new_id_or_none(has_parent, parent_id)) < 0
        || set_slot(st, span, SLOT_KIND, ref(kind)) < 0
        || set_slot(st, span, SLOT_NAME, ref(name)) < 0
        || set_slot(st, span, SLOT_START, PyLong_FromLongLong(start_ns)) < 0
        || set_slot(st, span, SLOT_DURATION, PyLong_FromLongLong(duration_ns)) < 0
        || set_slot(st, span, SLOT_LANE, PyLong_FromLongLong(lane)) < 0
        /* Shared with the side tables: a later attach_metadata_if_absent shows. */
        || set_slot(st, span, SLOT_METADATA, ref(metadata)) < 0
        || set_slot(st, span, SLOT_LINKS, ref(links)) < 0
        || set_slot(st, span, SLOT_EVENTS, ref(events)) < 0) {
        Py_DECREF(span);
        return NULL;
    }
    return span;
}

static PyObject *
span_of_handle(Collector *self, Handle *h)
{
    return build_span(self->state, h->id, h->has_parent, h->parent_id, h->kind, h->name,
                      h->start_ns, h->duration_ns, h->lane, h->trace_id,
                      self->bindings[h->binding].object, h->metadata, h->links, h->events);
}

/* The ClockBinding objects, by index: rows name theirs by index. */
static PyObject *
bindings_snapshot(Collector *self)
{
    PyObject *out = PyTuple_New(self->nbindings);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->nbindings; i++) {
        Py_INCREF(self->bindings[i].object);
        PyTuple_SET_ITEM(out, i, self->bindings[i].object);
    }
    return out;
}

static int
row_side(PyObject *table, PyObject *key, int present, PyObject **out)
{
    *out = NULL;
    if (!present) {
        return 0;
    }
    *out = PyDict_GetItemWithError(table, key); /* borrowed */
    return (*out == NULL && PyErr_Occurred()) ? -1 : 0;
}

/* Spans of rows [0, n) (rows/tables may be detached from the collector). */
static PyObject *
build_rows(Collector *self, Row *rows, Py_ssize_t n, PyObject *meta, PyObject *links,
           PyObject *events, PyObject *bindings, int live)
{
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    uint64_t generation = self->generation;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (live) {
            /* Building allocates, so the GC may run finalizers that end or
             * reset spans here: re-read the live rows every time. */
            if (self->generation != generation || i >= self->nrows) {
                break;
            }
            rows = self->rows;
        }
        Row row = rows[i];
        Py_INCREF(row.name);
        Py_INCREF(row.trace_id);
        PyObject *key = PyLong_FromLongLong(row.span_id);
        PyObject *m, *l, *e, *span = NULL;
        if (key != NULL && row_side(meta, key, row.flags & ROW_META, &m) == 0
            && row_side(links, key, row.flags & ROW_LINKS, &l) == 0
            && row_side(events, key, row.flags & ROW_EVENTS, &e) == 0) {
            Py_XINCREF(m);
            Py_XINCREF(l);
            Py_XINCREF(e);
            span = build_span(self->state, row.span_id, row.flags & ROW_PARENT, row.parent_id,
                              row.kind, row.name, row.start_ns, row.duration_ns, row.lane,
                              row.trace_id, PyTuple_GET_ITEM(bindings, row.binding), m, l, e);
            Py_XDECREF(m);
            Py_XDECREF(l);
            Py_XDECREF(e);
        }
        Py_XDECREF(key);
        Py_DECREF(row.name);
        Py_DECREF(row.trace_id);
        if (span == NULL || PyList_Append(out, span) < 0) {
            Py_XDECREF(span);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(span);
    }
    return out;
}

static void
free_rows(Row *rows, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_DECREF(rows[i].name);
        Py_DECREF(rows[i].trace_id);
    }
    PyMem_Free(rows);
}

/* ------------------------------------------------------------------------ */
/* events                                                                   */

/* events.<name>(*args), the global read now (tests patch them). */
static PyObject *
call_events(State *st, PyObject *name, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *func = PyDict_GetItemWithError(st->events_dict, name);
    if (func == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_AttributeError, "harn_async_trace.events has no %R", name);
        }
        return NULL;
    }
    Py_INCREF(func);
    PyObject *result = PyObject_Vectorcall(func, args, nargs, NULL);
    Py_DECREF(func);
    return result;
}

static int
emit_start(Collector *self, Handle *h)
{
    State *st = self->state;
    PyObject *links = h->links ? PyList_AsTuple(h->links) : PyTuple_New(0);
    PyObject *metadata = h->metadata ? PyDict_Copy(h->metadata) : PyDict_New();
    int64_t wall_offset = self->bindings[h->binding].wall_offset_ns;
    PyObject *parent = new_id_or_none(h->has_parent, h->parent_id);
    PyObject *start = PyLong_FromLongLong(h->start_ns);
    PyObject *start_unix = PyLong_FromLongLong(h->start_ns + wall_offset);
    PyObject *lane = PyLong_FromLongLong(h->lane);
    PyObject *event = NULL;
    if (links && metadata && parent && start && start_unix && lane) {
        PyObject *args[] = {h->trace_id, h->span_id, parent, h->name, h->kind, links, start,
                            metadata, start_unix, lane, (PyObject *)self};
        event = call_events(st, st->s_SpanStartEvent, args, 11);
    }
    Py_XDECREF(links);
    Py_XDECREF(metadata);
    Py_XDECREF(parent);
    Py_XDECREF(start);
    Py_XDECREF(start_unix);
    Py_XDECREF(lane);
    if (event == NULL) {
        return -1;
    }
    PyObject *result = call_events(st, st->s_emit_start, &event, 1);
    Py_DECREF(event);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

static int
emit_end(Collector *self, PyObject *span, int dropped)
{
    State *st = self->state;
    PyObject *args[] = {span, dropped ? Py_True : Py_False, (PyObject *)self};
    PyObject *event = call_events(st, st->s_SpanEndEvent, args, 3);
    if (event == NULL) {
        return -1;
    }
    PyObject *result = call_events(st, st->s_emit_end, &event, 1);
    Py_DECREF(event);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* opening                                                                  */

static PyObject *
checked_links(Collector *self, PyObject *links)
{
    State *st = self->state;
    if (!PyList_Check(links) && !PyTuple_Check(links)) {
        PyErr_Format(PyExc_TypeError, "links must be a list of SpanLink, got %s",
                     Py_TYPE(links)->tp_name);
        return NULL;
    }
    PyObject *kept = PySequence_List(links);
    if (kept == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(kept);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *link = PyList_GET_ITEM(kept, i);
        if (Py_TYPE(link) != (PyTypeObject *)st->SpanLink) {
            int ok = PyObject_IsInstance(link, st->SpanLink);
            if (ok <= 0) {
                if (ok == 0) {
                    PyErr_Format(PyExc_TypeError, "links[%zd] must be a SpanLink, got %R", i,
                                 link);
                }
                Py_DECREF(kept);
                return NULL;
            }
        }
    }
    if (n > self->max_links) {
        self->dropped_links += n - self->max_links;
        if (PyList_SetSlice(kept, self->max_links, n, NULL) < 0) {
            Py_DECREF(kept);
            return NULL;
        }
    }
    return kept;
}

static PyObject *
checked_metadata(Collector *self, PyObject *metadata)
{
    if (!PyDict_Check(metadata)) {
        PyErr_Format(PyExc_TypeError, "metadata must be a dict, got %R", metadata);
        return NULL;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(metadata, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            PyErr_Format(PyExc_TypeError, "metadata key must be a str, got %R", key);
            return NULL;
        }
    }
    Py_ssize_t n = PyDict_GET_SIZE(metadata);
    if (n <= self->max_metadata) {
        return PyDict_Copy(metadata);
    }
    self->dropped_metadata += n - self->max_metadata;
    PyObject *kept = PyDict_New();
    if (kept == NULL) {
        return NULL;
    }
    pos = 0;
    for (Py_ssize_t i = 0; i < self->max_metadata && PyDict_Next(metadata, &pos, &key, &value);
         i++) {
        if (PyDict_SetItem(kept, key, value) < 0) {
            Py_DECREF(kept);
            return NULL;
        }
    }
    return kept;
}

static PyObject *
handle_alloc(State *st)
{
    Handle *h = PyObject_GC_New(Handle, st->HandleType);
    if (h == NULL) {
        return NULL;
    }
    h->span_id = NULL;
    h->collector = NULL;
    h->prev = NULL;
    h->trace_id = NULL;
    h->kind = NULL;
    h->name = NULL;
    h->metadata = NULL;
    h->links = NULL;
    h->events = NULL;
    h->id = h->parent_id = h->lane = h->start_ns = h->duration_ns = 0;
    h->binding = 0;
    h->has_parent = 0;
    return (PyObject *)h;
}

/* Open a span; returns its handle (new reference). */
static Handle *
core_open(Collector *self, PyObject *kind_arg, PyObject *name_arg, PyObject *links_arg,
          int detached, int push, int new_trace, PyObject *metadata_arg)
{
    State *st = self->state;
    Handle *h = NULL;
    PyObject *clock = NULL, *trace = NULL;
    PyObject *kind = checked_kind(st, kind_arg);
    if (kind == NULL) {
        return NULL;
    }
    PyObject *name = checked_name(name_arg);
    if (name == NULL) {
        Py_DECREF(kind);
        return NULL;
    }
    /* Every call into Python happens first (see the top of the file). */
    uint64_t generation = self->generation;
    clock = PyObject_CallNoArgs(st->current_clock);
    if (clock == NULL) {
        goto fail;
    }
    Py_ssize_t bi = clock == self->last_clock ? self->last_binding : binding_for(self, clock);
    if (bi < 0) {
        goto fail;
    }
    int64_t start_ns;
    if (binding_now(self, bi, &start_ns) < 0) {
        goto fail;
    }
    int64_t id = self->next_id++;
    if (new_trace) {
        trace = PyObject_CallOneArg(st->new_trace_id, clock);
        if (trace == NULL) {
            goto fail;
        }
    }
    if (self->generation != generation) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the collector was reset while a span was being opened");
        goto fail;
    }
    Py_CLEAR(clock);

    h = (Handle *)handle_alloc(st);
    if (h == NULL) {
        goto fail;
    }
    h->kind = kind;
    h->name = name;
    kind = name = NULL;
    h->id = id;
    h->binding = bi;
    h->start_ns = start_ns;
    h->span_id = PyLong_FromLongLong(id);
    if (h->span_id == NULL) {
        goto fail;
    }
    PyObject *top_obj;
    if (PyContextVar_Get(self->chain, NULL, &top_obj) < 0) {
        goto fail;
    }
    Handle *top = top_obj == Py_None ? NULL : (Handle *)top_obj;
    while (top != NULL && top->collector == NULL) {
        top = top->prev;
    }
    Py_XINCREF(top);
    Py_XDECREF(top_obj);
    if (top == NULL) {
        h->lane = id;
        if (trace == NULL) {
            trace = self->trace_id;
            Py_INCREF(trace);
        }
    }
    else if (detached || new_trace) {
        /* Detached and not pushed: the span of work handed to a new task. */
        h->lane = push ? top->lane : id;
        if (trace == NULL) {
            trace = top->trace_id;
            Py_INCREF(trace);
        }
    }
    else {
        h->has_parent = 1;
        h->parent_id = top->id;
        h->lane = top->lane;
        trace = top->trace_id;
        Py_INCREF(trace);
    }
    h->prev = push ? top : NULL;
    if (!push) {
        Py_XDECREF(top);
    }
    top = NULL;
    h->trace_id = trace;
    trace = NULL;
    if (links_arg != NULL && links_arg != Py_None) {
        int nonempty = PyObject_IsTrue(links_arg);
        if (nonempty < 0) {
            goto fail;
        }
        if (nonempty) {
            h->links = checked_links(self, links_arg);
            if (h->links == NULL) {
                goto fail;
            }
            if (detached && !push && !new_trace && PyList_GET_SIZE(h->links) > 0) {
                /* Handed-off work follows the trace of the span that handed it off. */
                PyObject *linked = PyObject_GetAttr(PyList_GET_ITEM(h->links, 0), st->s_trace_id);
                if (linked == NULL) {
                    goto fail;
                }
                Py_SETREF(h->trace_id, linked);
            }
        }
    }
    if (metadata_arg != NULL && metadata_arg != Py_None) {
        int nonempty = PyObject_IsTrue(metadata_arg);
        if (nonempty < 0) {
            goto fail;
        }
        if (nonempty) {
            h->metadata = checked_metadata(self, metadata_arg);
            if (h->metadata == NULL) {
                goto fail;
            }
        }
    }
    if (PyDict_SetItem(self->open, h->span_id, (PyObject *)h) < 0) {
        goto fail;
    }
    Py_INCREF(self);
    h->collector = self;
    if (push) {
        PyObject *token = PyContextVar_Set(self->chain, (PyObject *)h);
        if (token == NULL) {
            PyObject *et, *ev, *tb;
            PyErr_Fetch(&et, &ev, &tb);
            Py_CLEAR(h->collector);
            PyObject *popped = dict_pop(self->open, h->span_id);
            Py_XDECREF(popped);
            PyErr_Restore(et, ev, tb);
            goto fail;
        }
        Py_DECREF(token);
    }
    int listening = events_listening(st, st->s_start_subs);
    if (listening != 0) {
        if (listening < 0 || emit_start(self, h) < 0) {
            /* A KeyboardInterrupt/SystemExit from a listener (emit_start
             * isolates Exceptions): the caller never gets the id, so nobody
             * could end this span. Unregister it and mark it ended. */
            PyObject *et, *ev, *tb;
            PyErr_Fetch(&et, &ev, &tb);
            if (h->collector != NULL) {
                Py_CLEAR(h->collector);
                PyObject *popped = dict_pop(self->open, h->span_id);
                Py_XDECREF(popped);
            }
            PyErr_Restore(et, ev, tb);
            Py_DECREF(h);
            return NULL;
        }
    }
    return h;
fail:
    Py_XDECREF(kind);
    Py_XDECREF(name);
    Py_XDECREF(clock);
    Py_XDECREF(trace);
    Py_XDECREF(h);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* ending                                                                   */

/* End the open span `h` (already taken out of the open table).
 * With `record` non-NULL, *record receives its Span (new reference). */
static int
finish(Collector *self, Handle *h, int instant, PyObject **record)
{
    State *st = self->state;
    uint64_t generation = self->generation;
    /* Ended before the clock is read: a clock that raises loses the span
     * instead of leaving it half open. The caller holds `self`. */
    Py_CLEAR(h->collector);
    if (instant) {
        h->duration_ns = 0;
    }
    else {
        int64_t now;
        if (binding_now(self, h->binding, &now) < 0) {
            return -1;
        }
        h->duration_ns = now - h->start_ns;
        if (self->generation != generation) {
            /* The clock reset the collector: this span was abandoned with it. */
            if (record != NULL) {
                *record = NULL;
            }
            return 0;
        }
    }
    int dropped = self->nrows >= self->max_spans;
    if (!dropped) {
        if (self->nrows == self->rows_cap) {
            Py_ssize_t cap = self->rows_cap ? self->rows_cap + self->rows_cap / 2 : 64;
            Row *grown = PyMem_Realloc(self->rows, cap * sizeof(Row));
            if (grown == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            self->rows = grown;
            self->rows_cap = cap;
        }
        uint32_t flags = h->has_parent ? ROW_PARENT : 0;
        if (h->metadata != NULL) {
            if (PyDict_SetItem(self->meta_table, h->span_id, h->metadata) < 0) {
                return -1;
            }
            flags |= ROW_META;
        }
        if (h->links != NULL) {
            if (PyDict_SetItem(self->links_table, h->span_id, h->links) < 0) {
                return -1;
            }
            flags |= ROW_LINKS;
        }
        if (h->events != NULL) {
            if (PyDict_SetItem(self->events_table, h->span_id, h->events) < 0) {
                return -1;
            }
            flags |= ROW_EVENTS;
        }
        if (!PyUnicode_CheckExact(h->trace_id)) {
            flags |= ROW_ODD_TRACE;
            self->odd_rows++;
        }
        Row *row = &self->rows[self->nrows++];
        row->span_id = h->id;
        row->parent_id = h->parent_id;
        row->lane = h->lane;
        row->start_ns = h->start_ns;
        row->duration_ns = h->duration_ns;
        row->name = h->name;
        Py_INCREF(h->name);
        row->trace_id = h->trace_id;
        Py_INCREF(h->trace_id);
        row->kind = h->kind;
        row->binding = (uint32_t)h->binding;
        row->flags = flags;
    }
    else {
        self->dropped_spans++;
    }
    PyObject *span = NULL;
    int listening = events_listening(st, st->s_end_subs);
    if (listening < 0) {
        return -1;
    }
    if (listening || record != NULL) {
        span = span_of_handle(self, h);
        if (span == NULL) {
            return -1;
        }
        /* Dropped spans too: listeners hear them (the JSONL stream keeps them). */
        if (listening && emit_end(self, span, dropped) < 0) {
            Py_DECREF(span);
            return -1;
        }
    }
    if (record != NULL) {
        *record = span;
    }
    else {
        Py_XDECREF(span);
    }
    return 0;
}

/* 1: was open and is now ended; 0: not open; -1: error. */
static int
core_close(Collector *self, PyObject *span_id, int instant, PyObject **record)
{
    PyObject *popped = dict_pop(self->open, span_id);
    if (popped == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            /* An unhashable id cannot be open. */
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    if (popped == Py_None) {
        Py_DECREF(popped);
        return 0;
    }
    int status = finish(self, (Handle *)popped, instant, record);
    Py_DECREF(popped);
    return status < 0 ? -1 : 1;
}

/* The open handle of `span_id` (borrowed), NULL (no error) if not open. */
static inline Handle *
open_handle(Collector *self, PyObject *span_id)
{
    PyObject *found = PyDict_GetItemWithError(self->open, span_id);
    if (found == NULL && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
        }
    }
    return (Handle *)found;
}

/* ------------------------------------------------------------------------ */
/* open-span edits                                                          */

static int
handle_set_metadata_impl(Handle *h, PyObject *key, PyObject *value, int if_absent)
{
    Collector *self = h->collector;
    if (!PyUnicode_CheckExact(key)) {
        PyErr_Format(PyExc_TypeError, "metadata key must be a str, got %R", key);
        return -1;
    }
    if (h->metadata == NULL) {
        h->metadata = PyDict_New();
        if (h->metadata == NULL) {
            return -1;
        }
    }
    int present = PyDict_Contains(h->metadata, key);
    if (present < 0) {
        return -1;
    }
    if (present && if_absent) {
        return 0;
    }
    if (!present && PyDict_GET_SIZE(h->metadata) >= self->max_metadata) {
        self->dropped_metadata++;
        return 0;
    }
    return PyDict_SetItem(h->metadata, key, value);
}

static int
core_set_metadata(Collector *self, PyObject *span_id, PyObject *key, PyObject *value)
{
    Handle *h = open_handle(self, span_id);
    if (h == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    Py_INCREF(h);
    int status = handle_set_metadata_impl(h, key, value, 0);
    Py_DECREF(h);
    return status;
}


static int
core_attach_if_absent(Collector *self, PyObject *span_id, PyObject *key, PyObject *value)
{
    if (!PyUnicode_CheckExact(key)) {
        PyErr_Format(PyExc_TypeError, "metadata key must be a str, got %R", key);
        return -1;
    }
    Handle *h = open_handle(self, span_id);
    if (h != NULL) {
        Py_INCREF(h);
        int status = handle_set_metadata_impl(h, key, value, 1);
        Py_DECREF(h);
        return status;
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    PyObject *metadata = PyDict_GetItemWithError(self->meta_table, span_id);
    if (metadata == NULL) {
        if (PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
                return -1;
            }
            PyErr_Clear();
            return 0;
        }
        if (!PyLong_Check(span_id)) {
            return 0;
        }
        int overflow;
        long long id = PyLong_AsLongLongAndOverflow(span_id, &overflow);
        if ((id == -1 && PyErr_Occurred()) || overflow) {
            PyErr_Clear();
            return 0;
        }
        Py_ssize_t index = -1;
        for (Py_ssize_t i = self->nrows - 1; i >= 0 && index < 0; i--) {
            if (self->rows[i].span_id == id) {
                index = i;
            }
        }
        if (index < 0) {
            return 0;
        }
        metadata = PyDict_New();
        if (metadata == NULL || PyDict_SetItem(self->meta_table, span_id, metadata) < 0) {
            Py_XDECREF(metadata);
            return -1;
        }
        Py_DECREF(metadata); /* the table holds it */
        self->rows[index].flags |= ROW_META;
    }
    int present = PyDict_Contains(metadata, key);
    if (present != 0) {
        return present < 0 ? -1 : 0;
    }
    if (PyDict_GET_SIZE(metadata) >= self->max_metadata) {
        self->dropped_metadata++;
        return 0;
    }
    return PyDict_SetItem(metadata, key, value);
}

/* Returns 1 (recorded or dropped by the limit) or -1; the span is open. */
static int
handle_record_event_impl(Handle *h, PyObject *name, PyObject *attributes)
{
    Collector *self = h->collector;
    State *st = self->state;
    if (!PyUnicode_CheckExact(name)) {
        PyErr_Format(PyExc_TypeError, "event name must be a str, got %R", name);
        return -1;
    }
    if (attributes != NULL && attributes != Py_None && !PyDict_Check(attributes)) {
        PyErr_Format(PyExc_TypeError, "event attributes must be a dict, got %R", attributes);
        return -1;
    }
    if (h->events == NULL) {
        h->events = PyList_New(0);
        if (h->events == NULL) {
            return -1;
        }
    }
    else if (PyList_GET_SIZE(h->events) >= self->max_events) {
        self->dropped_events++;
        return 1;
    }
    Py_INCREF(self);
    uint64_t generation = self->generation;
    int64_t now;
    int status = binding_now(self, h->binding, &now);
    if (status < 0 || self->generation != generation || h->collector == NULL) {
        Py_DECREF(self);
        return status < 0 ? -1 : 1;
    }
    int64_t offset = now - h->start_ns;
    int64_t wall_offset = self->bindings[h->binding].wall_offset_ns;
    Py_DECREF(self);
    PyObject *attrs = (attributes != NULL && attributes != Py_None
                       && PyDict_GET_SIZE(attributes) > 0)
                          ? PyDict_Copy(attributes)
                          : PyDict_New();
    PyObject *time_ms = PyLong_FromLongLong(floor_div(h->start_ns + offset + wall_offset,
                                                      1000000));
    PyObject *offset_ms = PyLong_FromLongLong(floor_div(offset, 1000000));
    PyObject *event = NULL;
    if (attrs && time_ms && offset_ms) {
        PyObject *args[] = {name, time_ms, offset_ms, attrs};
        event = PyObject_Vectorcall(st->SpanEvent, args, 4, NULL);
    }
    Py_XDECREF(attrs);
    Py_XDECREF(time_ms);
    Py_XDECREF(offset_ms);
    if (event == NULL) {
        return -1;
    }
    status = PyList_Append(h->events, event);
    Py_DECREF(event);
    return status < 0 ? -1 : 1;
}

static PyObject *
link_of(State *st, PyObject *trace_id, PyObject *span_id)
{
    PyObject *text = PyObject_Str(span_id);
    if (text == NULL) {
        return NULL;
    }
    PyObject *args[] = {trace_id, text};
    PyObject *link = PyObject_Vectorcall(st->SpanLink, args, 2, NULL);
    Py_DECREF(text);
    return link;
}

/* ------------------------------------------------------------------------ */
/* Handle type (public name: SpanHandle)                                    */

static int
handle_traverse(Handle *h, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(h));
    Py_VISIT(h->collector);
    Py_VISIT(h->prev);
    Py_VISIT(h->trace_id);
    Py_VISIT(h->metadata);
    Py_VISIT(h->links);
    Py_VISIT(h->events);
    return 0;
}

static int
handle_clear(Handle *h)
{
    Py_CLEAR(h->collector);
    Py_CLEAR(h->prev);
    Py_CLEAR(h->trace_id);
    Py_CLEAR(h->metadata);
    Py_CLEAR(h->links);
    Py_CLEAR(h->events);
    return 0;
}

static void
handle_dealloc(Handle *h)
{
    PyTypeObject *tp = Py_TYPE(h);
    PyObject_GC_UnTrack(h);
    /* Long chains free one another: the trashcan keeps the C stack flat. */
    Py_TRASHCAN_BEGIN(h, handle_dealloc)
    handle_clear(h);
    Py_CLEAR(h->span_id);
    Py_CLEAR(h->kind);
    Py_CLEAR(h->name);
    PyObject_GC_Del(h);
    Py_DECREF(tp);
    Py_TRASHCAN_END
}

static PyObject *
handle_set_metadata(Handle *h, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "set_metadata() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (h->collector != NULL) {
        Py_INCREF(h);
        int status = handle_set_metadata_impl(h, args[0], args[1], 0);
        Py_DECREF(h);
        if (status < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}


static PyObject *
handle_record_event(Handle *h, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    State *st = handle_state((PyObject *)h);
    PyObject *name = nargs >= 1 ? args[0] : NULL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "record_event() takes 1 positional argument (%zd given)",
                     nargs);
        return NULL;
    }
    PyObject *attrs = NULL;
    if (nkw > 0) {
        attrs = PyDict_New();
        if (attrs == NULL) {
            return NULL;
        }
        for (Py_ssize_t k = 0; k < nkw; k++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, k);
            if (name == NULL && PyUnicode_Compare(key, st->s_name) == 0) {
                name = args[nargs + k];
                continue;
            }
            if (PyDict_SetItem(attrs, key, args[nargs + k]) < 0) {
                Py_DECREF(attrs);
                return NULL;
            }
        }
    }
    if (name == NULL) {
        Py_XDECREF(attrs);
        PyErr_SetString(PyExc_TypeError, "record_event() missing required argument 'name'");
        return NULL;
    }
    if (h->collector == NULL) {
        Py_XDECREF(attrs);
        Py_RETURN_FALSE;
    }
    Py_INCREF(h);
    int status = handle_record_event_impl(h, name, attrs);
    Py_DECREF(h);
    Py_XDECREF(attrs);
    if (status < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyObject *
handle_link(Handle *h, PyObject *Py_UNUSED(ignored))
{
    if (h->collector == NULL) {
        Py_RETURN_NONE;
    }
    return link_of(handle_state((PyObject *)h), h->trace_id, h->span_id);
}

static PyObject *
handle_repr(Handle *h)
{
    return PyUnicode_FromFormat("SpanHandle(span_id=%S)", h->span_id);
}

static PyMethodDef handle_methods[] = {
    {"set_metadata", (PyCFunction)(void (*)(void))handle_set_metadata, METH_FASTCALL,
     PyDoc_STR("set_metadata($self, key, value, /)\n--\n\nSet metadata on the span while it is open.")},
    {"record_event", (PyCFunction)(void (*)(void))handle_record_event,
     METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("record_event($self, name, /, **attrs)\n--\n\nRecord an event on the span; False when disabled or ended.")},
    {"link", (PyCFunction)handle_link, METH_NOARGS,
     PyDoc_STR("link($self, /)\n--\n\nA link to this span (None when disabled or ended).")},
    {NULL},
};

static PyMemberDef handle_members[] = {
    {"span_id", T_OBJECT, offsetof(Handle, span_id), READONLY,
     PyDoc_STR("The span's id (0 when tracing is disabled).")},
    {NULL},
};

PyDoc_STRVAR(handle_doc,
"An open span: what ``with span(...) as handle`` gives, with helpers bound to it.\n\n"
"``span_id`` is 0 when tracing is disabled, and every helper is then a\n"
"no-op. Once the span ends (or its collector is reset) the helpers do\n"
"nothing either.");

static PyType_Slot handle_slots[] = {
    {Py_tp_doc, (void *)handle_doc},
    {Py_tp_dealloc, handle_dealloc},
    {Py_tp_traverse, handle_traverse},
    {Py_tp_clear, handle_clear},
    {Py_tp_repr, handle_repr},
    {Py_tp_methods, handle_methods},
    {Py_tp_members, handle_members},
    {0, NULL},
};

static PyType_Spec handle_spec = {
    .name = "harn_async_trace.SpanHandle",
    .basicsize = sizeof(Handle),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION
             | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = handle_slots,
};

/* ------------------------------------------------------------------------ */
/* ChainBinding type                                                        */

static int
chain_binding_traverse(ChainBinding *b, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(b));
    Py_VISIT(b->chain);
    Py_VISIT(b->node);
    Py_VISIT(b->token);
    return 0;
}

static int
chain_binding_clear(ChainBinding *b)
{
    Py_CLEAR(b->chain);
    Py_CLEAR(b->node);
    Py_CLEAR(b->token);
    return 0;
}

static void
chain_binding_dealloc(ChainBinding *b)
{
    PyTypeObject *tp = Py_TYPE(b);
    PyObject_GC_UnTrack(b);
    chain_binding_clear(b);
    PyObject_GC_Del(b);
    Py_DECREF(tp);
}

static PyObject *
chain_binding_enter(ChainBinding *b, PyObject *Py_UNUSED(ignored))
{
    PyObject *token = PyContextVar_Set(b->chain, b->node);
    if (token == NULL) {
        return NULL;
    }
    Py_XSETREF(b->token, token);
    Py_RETURN_NONE;
}

static PyObject *
chain_binding_exit(ChainBinding *b, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *token = b->token;
    b->token = NULL;
    if (token != NULL) {
        int status = PyContextVar_Reset(b->chain, token);
        Py_DECREF(token);
        if (status < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef chain_binding_methods[] = {
    {"__enter__", (PyCFunction)chain_binding_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))chain_binding_exit, METH_FASTCALL, NULL},
    {NULL},
};

static PyType_Slot chain_binding_slots[] = {
    {Py_tp_doc, (void *)"``with collector.bind(span_id):`` -- the span is the whole chain inside."},
    {Py_tp_dealloc, chain_binding_dealloc},
    {Py_tp_traverse, chain_binding_traverse},
    {Py_tp_clear, chain_binding_clear},
    {Py_tp_methods, chain_binding_methods},
    {0, NULL},
};

static PyType_Spec chain_binding_spec = {
    .name = "harn_async_trace._core._ccore.ChainBinding",
    .basicsize = sizeof(ChainBinding),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION
             | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = chain_binding_slots,
};

/* ------------------------------------------------------------------------ */
/* Ready type                                                               */

static void
ready_dealloc(Ready *r)
{
    PyTypeObject *tp = Py_TYPE(r);
    Py_CLEAR(r->value);
    PyObject_Free(r);
    Py_DECREF(tp);
}

static PyObject *
ready_await(PyObject *self)
{
    Py_INCREF(self);
    return self;
}

static PySendResult
ready_send(Ready *r, PyObject *Py_UNUSED(arg), PyObject **result)
{
    Py_INCREF(r->value);
    *result = r->value;
    return PYGEN_RETURN;
}

static PyObject *
ready_next(Ready *r)
{
    if (r->value == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
    }
    else {
        PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, r->value);
        if (stop != NULL) {
            PyErr_SetObject(PyExc_StopIteration, stop);
            Py_DECREF(stop);
        }
    }
    return NULL;
}

static PyObject *
ready_new(State *st, PyObject *value)
{
    Ready *r = PyObject_New(Ready, st->ReadyType);
    if (r == NULL) {
        return NULL;
    }
    Py_INCREF(value);
    r->value = value;
    return (PyObject *)r;
}

static PyType_Slot ready_slots[] = {
    {Py_tp_dealloc, ready_dealloc},
    {Py_am_await, ready_await},
    {Py_am_send, ready_send},
    {Py_tp_iter, ready_await},
    {Py_tp_iternext, ready_next},
    {0, NULL},
};

static PyType_Spec ready_spec = {
    .name = "harn_async_trace._core._ccore.Ready",
    .basicsize = sizeof(Ready),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = ready_slots,
};

/* ------------------------------------------------------------------------ */
/* Collector type (the base of SpanCollector)                               */

static int
collector_fresh_state(Collector *self, int64_t first_id)
{
    /* Python first: a trace id, and the system clock's epoch. */
    State *st = self->state;
    PyObject *clock = PyObject_CallNoArgs(st->current_clock);
    if (clock == NULL) {
        return -1;
    }
    PyObject *trace = PyObject_CallOneArg(st->new_trace_id, clock);
    Py_DECREF(clock);
    if (trace == NULL) {
        return -1;
    }
    int64_t mono, wall;
    PyObject *mono_fn = PyObject_GetAttr(st->system_clock, st->s_monotonic_ns);
    PyObject *wall_fn = PyObject_GetAttr(st->system_clock, st->s_wall_ns);
    int status = (mono_fn && wall_fn
                  && call_int64(mono_fn, "SystemClock.monotonic_ns()", &mono) == 0
                  && call_int64(wall_fn, "SystemClock.wall_ns()", &wall) == 0)
                     ? 0
                     : -1;
    Py_XDECREF(mono_fn);
    Py_XDECREF(wall_fn);
    PyObject *open = PyDict_New(), *meta = PyDict_New(), *links = PyDict_New();
    PyObject *events = PyDict_New(), *index = PyDict_New();
    if (status < 0 || !open || !meta || !links || !events || !index) {
        Py_DECREF(trace);
        Py_XDECREF(open);
        Py_XDECREF(meta);
        Py_XDECREF(links);
        Py_XDECREF(events);
        Py_XDECREF(index);
        return -1;
    }
    /* Swap everything in, then release the old state: releasing can run
     * finalizers that call back into this collector. */
    PyObject *old[] = {self->trace_id, self->open, self->meta_table, self->links_table,
                       self->events_table, self->binding_index};
    Row *old_rows = self->rows;
    Py_ssize_t old_nrows = self->nrows;
    Binding *old_bindings = self->bindings;
    Py_ssize_t old_nbindings = self->nbindings;
    self->trace_id = trace;
    self->open = open;
    self->meta_table = meta;
    self->links_table = links;
    self->events_table = events;
    self->binding_index = index;
    self->rows = NULL;
    self->nrows = self->rows_cap = self->odd_rows = 0;
    self->bindings = NULL;
    self->nbindings = self->bindings_cap = 0;
    self->last_clock = NULL;
    self->last_binding = -1;
    self->next_id = first_id;
    self->system_mono = mono;
    self->system_wall = wall;
    self->dropped_spans = self->dropped_events = self->dropped_links = 0;
    self->dropped_metadata = 0;
    self->generation++;
    for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
        Py_XDECREF(old[i]);
    }
    if (old_rows != NULL) {
        free_rows(old_rows, old_nrows);
    }
    if (old_bindings != NULL) {
        clear_bindings(old_bindings, old_nbindings);
    }
    return 0;
}

static PyObject *
collector_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *module = PyType_GetModuleByDef(type, &ccore_module);
    if (module == NULL) {
        return NULL;
    }
    State *st = module_state(module);
    if (!st->configured) {
        PyErr_SetString(PyExc_RuntimeError, "the compiled core is not configured");
        return NULL;
    }
    Collector *self = (Collector *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    /* tp_alloc zeroed the object. */
    self->state = st;
    Py_INCREF(module);
    self->module = module;
    self->enabled = 1;
    self->max_spans = 1000000;
    self->max_events = self->max_links = self->max_metadata = 128;
    self->last_binding = -1;
    char name[64];
    snprintf(name, sizeof(name), "harn_span_chain_%lx", (unsigned long)(uintptr_t)self);
    /* One ContextVar per collector keeps chains of different collectors apart. */
    self->chain = PyContextVar_New(name, Py_None);
    if (self->chain == NULL || collector_fresh_state(self, 1) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
collector_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    return 0; /* SpanCollector.__init__ checks and sets the limits */
}

static int
collector_traverse(Collector *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->module);
    Py_VISIT(self->chain);
    Py_VISIT(self->open);
    Py_VISIT(self->meta_table);
    Py_VISIT(self->links_table);
    Py_VISIT(self->events_table);
    Py_VISIT(self->binding_index);
    Py_VISIT(self->trace_id);
    for (Py_ssize_t i = 0; i < self->nbindings; i++) {
        Py_VISIT(self->bindings[i].clock);
        Py_VISIT(self->bindings[i].now);
        Py_VISIT(self->bindings[i].object);
    }
    /* Rows hold exact strs (which cannot be in a cycle) except when a trace
     * id was some other object: only then are rows visited. */
    if (self->odd_rows > 0) {
        for (Py_ssize_t i = 0; i < self->nrows; i++) {
            if (self->rows[i].flags & ROW_ODD_TRACE) {
                Py_VISIT(self->rows[i].trace_id);
            }
        }
    }
    return 0;
}

static int
collector_clear(Collector *self)
{
    Py_CLEAR(self->chain);
    Py_CLEAR(self->open);
    Py_CLEAR(self->meta_table);
    Py_CLEAR(self->links_table);
    Py_CLEAR(self->events_table);
    Py_CLEAR(self->binding_index);
    Py_CLEAR(self->trace_id);
    if (self->bindings != NULL) {
        Binding *bindings = self->bindings;
        Py_ssize_t n = self->nbindings;
        self->bindings = NULL;
        self->nbindings = self->bindings_cap = 0;
        self->last_clock = NULL;
        clear_bindings(bindings, n);
    }
    if (self->rows != NULL) {
        Row *rows = self->rows;
        Py_ssize_t n = self->nrows;
        self->rows = NULL;
        self->nrows = self->rows_cap = self->odd_rows = 0;
        free_rows(rows, n);
    }
    return 0;
}

static void
collector_dealloc(Collector *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    collector_clear(self);
    Py_CLEAR(self->module);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
collector_open(Collector *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const int want[] = {ARG_KIND, ARG_NAME, ARG_LINKS, ARG_DETACHED, ARG_PUSH,
                               ARG_NEW_TRACE, ARG_METADATA};
    PyObject *a[7];
    if (kwnames == NULL && nargs == 2) {
        a[0] = args[0];
        a[1] = args[1];
        a[2] = a[3] = a[4] = a[5] = a[6] = NULL;
    }
    else if (parse_args(self->state, "open", args, nargs, kwnames, want, 7, 2, a) < 0) {
        return NULL;
    }
    int detached = truth(a[3], 0), push = truth(a[4], 1), new_trace = truth(a[5], 0);
    if (detached < 0 || push < 0 || new_trace < 0) {
        return NULL;
    }
    Handle *h = core_open(self, a[0], a[1], a[2], detached, push, new_trace, a[6]);
    if (h == NULL) {
        return NULL;
    }
    PyObject *span_id = h->span_id;
    Py_INCREF(span_id);
    Py_DECREF(h);
    return span_id;
}

static PyObject *
collector_start(Collector *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "start() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    Handle *h = core_open(self, args[0], args[1], NULL, 0, 1, 0, NULL);
    if (h == NULL) {
        return NULL;
    }
    PyObject *span_id = h->span_id;
    Py_INCREF(span_id);
    Py_DECREF(h);
    return span_id;
}

static PyObject *
collector_close(Collector *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const int want[] = {ARG_NAME /* placeholder: span_id */, ARG_INSTANT};
    PyObject *a[2];
    if (kwnames == NULL && nargs == 1) {
        a[0] = args[0];
        a[1] = NULL;
    }
    else {
        if (nargs < 1) {
            PyErr_SetString(PyExc_TypeError, "close() missing required argument 'span_id'");
            return NULL;
        }
        if (parse_args(self->state, "close", args + 1, nargs - 1, kwnames, want + 1, 1, 0,
                       a + 1) < 0) {
            return NULL;
        }
        a[0] = args[0];
    }
    int instant = truth(a[1], 0);
    if (instant < 0) {
        return NULL;
    }
    Py_INCREF(self);
    int status = core_close(self, a[0], instant, NULL);
    Py_DECREF(self);
    if (status < 0) {
        return NULL;
    }
    return PyBool_FromLong(status);
}

static PyObject *
collector_end(Collector *self, PyObject *span_id)
{
    PyObject *record = NULL;
    Py_INCREF(self);
    int status = core_close(self, span_id, 0, &record);
    Py_DECREF(self);
    if (status < 0) {
        return NULL;
    }
    if (status == 0 || record == NULL) {
        Py_RETURN_NONE;
    }
    return record;
}

static PyObject *
collector_set_metadata(Collector *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "set_metadata() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (core_set_metadata(self, args[0], args[1], args[2]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
collector_attach_metadata_if_absent(Collector *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "attach_metadata_if_absent() takes 3 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    if (core_attach_if_absent(self, args[0], args[1], args[2]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
collector_record_event(Collector *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "record_event() takes 2 or 3 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    Handle *h = open_handle(self, args[0]);
    if (h == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_FALSE;
    }
    Py_INCREF(h);
    int status = handle_record_event_impl(h, args[1], nargs == 3 ? args[2] : NULL);
    Py_DECREF(h);
    if (status < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

/* The innermost open handle of this context's chain (borrowed; kept alive
 * by the reference *top_out holds), or NULL. */
static int
chain_top(Collector *self, PyObject **top_out, Handle **live_out)
{
    PyObject *top;
    if (PyContextVar_Get(self->chain, NULL, &top) < 0) {
        return -1;
    }
    Handle *node = top == Py_None ? NULL : (Handle *)top;
    while (node != NULL && node->collector == NULL) {
        node = node->prev;
    }
    *top_out = top;
    *live_out = node;
    return 0;
}

static PyObject *
collector_current_span_id(Collector *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *top;
    Handle *live;
    if (chain_top(self, &top, &live) < 0) {
        return NULL;
    }
    PyObject *result = live == NULL ? Py_None : live->span_id;
    Py_INCREF(result);
    Py_DECREF(top);
    return result;
}

static PyObject *
collector_chain_length(Collector *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *top;
    if (PyContextVar_Get(self->chain, NULL, &top) < 0) {
        return NULL;
    }
    Py_ssize_t length = 0;
    for (Handle *node = top == Py_None ? NULL : (Handle *)top; node; node = node->prev) {
        length++;
    }
    Py_DECREF(top);
    return PyLong_FromSsize_t(length);
}

static PyObject *
collector_innermost_of(Collector *self, PyObject *span_ids)
{
    PyObject *top;
    if (PyContextVar_Get(self->chain, NULL, &top) < 0) {
        return NULL;
    }
    PyObject *wanted = span_ids;
    if (PyAnySet_Check(span_ids)) {
        Py_INCREF(wanted);
    }
    else if ((wanted = PySet_New(span_ids)) == NULL) {
        Py_DECREF(top);
        return NULL;
    }
    PyObject *result = Py_None;
    for (Handle *node = top == Py_None ? NULL : (Handle *)top; node; node = node->prev) {
        if (node->collector == NULL) {
            continue;
        }
        int found = PySet_Contains(wanted, node->span_id);
        if (found < 0) {
            result = NULL;
            break;
        }
        if (found) {
            result = node->span_id;
            break;
        }
    }
    Py_XINCREF(result);
    Py_DECREF(wanted);
    Py_DECREF(top);
    return result;
}

static PyObject *
collector_span_link(Collector *self, PyObject *span_id)
{
    Handle *h = open_handle(self, span_id);
    if (h == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return link_of(self->state, h->trace_id, span_id);
}

static PyObject *
collector_is_open(Collector *self, PyObject *span_id)
{
    Handle *h = open_handle(self, span_id);
    if (h == NULL && PyErr_Occurred()) {
        return NULL;
    }
    return PyBool_FromLong(h != NULL);
}

static PyObject *
collector_handle(Collector *self, PyObject *span_id)
{
    Handle *h = open_handle(self, span_id);
    if (h == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetObject(PyExc_KeyError, span_id);
        }
        return NULL;
    }
    Py_INCREF(h);
    return (PyObject *)h;
}

static PyObject *
collector_open_details(Collector *self, PyObject *span_id)
{
    Handle *h = open_handle(self, span_id);
    if (h == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetObject(PyExc_KeyError, span_id);
        }
        return NULL;
    }
    PyObject *parent = new_id_or_none(h->has_parent, h->parent_id);
    PyObject *start = PyLong_FromLongLong(h->start_ns
                                          + self->bindings[h->binding].wall_offset_ns);
    PyObject *result = NULL;
    if (parent && start) {
        result = PyTuple_Pack(3, h->trace_id, parent, start);
    }
    Py_XDECREF(parent);
    Py_XDECREF(start);
    return result;
}

static PyObject *
collector_open_span_count(Collector *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(PyDict_GET_SIZE(self->open));
}

static PyObject *
collector_finished_count(Collector *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(self->nrows);
}

static PyObject *
collector_open_ids(Collector *self, PyObject *Py_UNUSED(ignored))
{
    return PyDict_Keys(self->open);
}

static PyObject *
collector_spans(Collector *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self);
    PyObject *meta = self->meta_table, *links = self->links_table, *events = self->events_table;
    Py_INCREF(meta);
    Py_INCREF(links);
    Py_INCREF(events);
    PyObject *bindings = bindings_snapshot(self);
    PyObject *out = bindings == NULL ? NULL
                    : build_rows(self, self->rows, self->nrows, meta, links, events, bindings, 1);
    Py_XDECREF(bindings);
    Py_DECREF(meta);
    Py_DECREF(links);
    Py_DECREF(events);
    Py_DECREF(self);
    return out;
}

static PyObject *
collector_take_spans(Collector *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *fresh[3] = {PyDict_New(), PyDict_New(), PyDict_New()};
    PyObject *bindings = bindings_snapshot(self);
    if (!fresh[0] || !fresh[1] || !fresh[2] || !bindings) {
        Py_XDECREF(fresh[0]);
        Py_XDECREF(fresh[1]);
        Py_XDECREF(fresh[2]);
        Py_XDECREF(bindings);
        return NULL;
    }
    Py_INCREF(self);
    /* Detach first: building may run code that adds spans here. */
    Row *rows = self->rows;
    Py_ssize_t n = self->nrows;
    PyObject *meta = self->meta_table, *links = self->links_table, *events = self->events_table;
    self->meta_table = fresh[0];
    self->links_table = fresh[1];
    self->events_table = fresh[2];
    self->rows = NULL;
    self->nrows = self->rows_cap = self->odd_rows = 0;
    PyObject *out = build_rows(self, rows, n, meta, links, events, bindings, 0);
    if (rows != NULL) {
        free_rows(rows, n);
    }
    Py_DECREF(meta);
    Py_DECREF(links);
    Py_DECREF(events);
    Py_DECREF(bindings);
    Py_DECREF(self);
    return out;
}

static PyObject *
collector_reset(Collector *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self);
    PyObject *open = self->open;
    Py_INCREF(open);
    int abandoned = PyDict_GET_SIZE(open) > 0;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(open, &pos, &key, &value)) {
        /* Chains skip it from now on; it is never recorded. */
        Handle *h = (Handle *)value;
        Collector *owner = h->collector;
        h->collector = NULL;
        Py_XDECREF(owner); /* never the last reference: the caller holds self */
    }
    int status = collector_fresh_state(self, abandoned ? self->next_id : 1);
    Py_DECREF(open);
    Py_DECREF(self);
    if (status < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
collector_restart_ids(Collector *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_restart_ids() takes 2 arguments");
        return NULL;
    }
    long long first = PyLong_AsLongLong(args[1]);
    if (first == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_INCREF(args[0]);
    Py_SETREF(self->trace_id, args[0]);
    self->next_id = first;
    Py_RETURN_NONE;
}

static PyObject *
collector_bind(Collector *self, PyObject *span_id)
{
    State *st = self->state;
    Handle *h = open_handle(self, span_id);
    if (h == NULL && PyErr_Occurred()) {
        return NULL;
    }
    ChainBinding *b = PyObject_GC_New(ChainBinding, st->ChainBindingType);
    if (b == NULL) {
        return NULL;
    }
    Py_INCREF(self->chain);
    b->chain = self->chain;
    b->node = h == NULL ? Py_None : (PyObject *)h;
    Py_INCREF(b->node);
    b->token = NULL;
    PyObject_GC_Track(b);
    return (PyObject *)b;
}

static PyObject *
get_enabled(Collector *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->enabled);
}

static int
set_enabled(Collector *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete enabled");
        return -1;
    }
    int flag = PyObject_IsTrue(value);
    if (flag < 0) {
        return -1;
    }
    self->enabled = (char)flag;
    return 0;
}

static PyObject *
get_trace_id(Collector *self, void *Py_UNUSED(closure))
{
    Py_INCREF(self->trace_id);
    return self->trace_id;
}

static int
set_trace_id(Collector *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete trace_id");
        return -1;
    }
    Py_INCREF(value);
    Py_SETREF(self->trace_id, value);
    return 0;
}

static PyGetSetDef collector_getset[] = {
    {"enabled", (getter)get_enabled, (setter)set_enabled,
     PyDoc_STR("Whether the module API records spans into this collector."), NULL},
    {"trace_id", (getter)get_trace_id, (setter)set_trace_id,
     PyDoc_STR("The trace id of root spans (``trace_`` + a UUIDv7)."), NULL},
    {NULL},
};

static PyMemberDef collector_members[] = {
    {"max_spans", T_PYSSIZET, offsetof(Collector, max_spans), 0, NULL},
    {"max_events_per_span", T_PYSSIZET, offsetof(Collector, max_events), 0, NULL},
    {"max_links_per_span", T_PYSSIZET, offsetof(Collector, max_links), 0, NULL},
    {"max_metadata_per_span", T_PYSSIZET, offsetof(Collector, max_metadata), 0, NULL},
    {"dropped_spans", T_PYSSIZET, offsetof(Collector, dropped_spans), 0, NULL},
    {"dropped_events", T_PYSSIZET, offsetof(Collector, dropped_events), 0, NULL},
    {"dropped_links", T_PYSSIZET, offsetof(Collector, dropped_links), 0, NULL},
    {"dropped_metadata", T_PYSSIZET, offsetof(Collector, dropped_metadata), 0, NULL},
    {NULL},
};

#define FAST(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef collector_methods[] = {
    {"open", FAST(collector_open), METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("open($self, kind, name, links=None, detached=False, push=True, new_trace=False, metadata=None)\n--\n\nOpen a span and return its id.")},
    {"start", FAST(collector_start), METH_FASTCALL,
     PyDoc_STR("start($self, kind, name, /)\n--\n\nOpen a span under the current task's innermost open span; returns its id.")},
    {"close", FAST(collector_close), METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("close($self, span_id, instant=False)\n--\n\nEnd an open span without building its record; True if it was open.")},
    {"end", (PyCFunction)collector_end, METH_O,
     PyDoc_STR("end($self, span_id, /)\n--\n\nEnd an open span and return its record (None if it was not open).")},
    {"set_metadata", FAST(collector_set_metadata), METH_FASTCALL,
     PyDoc_STR("set_metadata($self, span_id, key, value, /)\n--\n\nSet ``key`` on an open span; unknown or ended ids are ignored.")},
    {"attach_metadata_if_absent", FAST(collector_attach_metadata_if_absent), METH_FASTCALL,
     PyDoc_STR("attach_metadata_if_absent($self, span_id, key, value, /)\n--\n\nSet ``key`` unless present, on an open *or finished* span.")},
    {"record_event", FAST(collector_record_event), METH_FASTCALL,
     PyDoc_STR("record_event($self, span_id, name, attributes=None, /)\n--\n\nRecord a timestamped event on an open span; False if it is not open.")},
    {"current_span_id", (PyCFunction)collector_current_span_id, METH_NOARGS,
     PyDoc_STR("current_span_id($self, /)\n--\n\nId of the current task's innermost open span, or None.")},
    {"innermost_of", (PyCFunction)collector_innermost_of, METH_O,
     PyDoc_STR("innermost_of($self, span_ids, /)\n--\n\nThe innermost of ``span_ids`` on the current task's chain (open ones only), or None.")},
    {"span_link", (PyCFunction)collector_span_link, METH_O,
     PyDoc_STR("span_link($self, span_id, /)\n--\n\nA link to an open span, or None.")},
    {"is_open", (PyCFunction)collector_is_open, METH_O,
     PyDoc_STR("is_open($self, span_id, /)\n--\n\nWhether ``span_id`` is open in this collector.")},
    {"open_details", (PyCFunction)collector_open_details, METH_O,
     PyDoc_STR("open_details($self, span_id, /)\n--\n\n``(trace_id, parent_id, start_unix_ns)`` of an open span; KeyError if not open.")},
    {"open_span_count", (PyCFunction)collector_open_span_count, METH_NOARGS,
     PyDoc_STR("open_span_count($self, /)\n--\n\nHow many spans are open right now (a leak check for tests).")},
    {"finished_count", (PyCFunction)collector_finished_count, METH_NOARGS,
     PyDoc_STR("finished_count($self, /)\n--\n\nHow many finished spans are held (what ``spans()`` would return).")},
    {"spans", (PyCFunction)collector_spans, METH_NOARGS,
     PyDoc_STR("spans($self, /)\n--\n\nThe finished spans, in completion order, without removing them.")},
    {"take_spans", (PyCFunction)collector_take_spans, METH_NOARGS,
     PyDoc_STR("take_spans($self, /)\n--\n\nRemove and return the finished spans (frees room under ``max_spans``).")},
    {"reset", (PyCFunction)collector_reset, METH_NOARGS,
     PyDoc_STR("reset($self, /)\n--\n\nForget every span and start a new trace.")},
    {"bind", (PyCFunction)collector_bind, METH_O,
     PyDoc_STR("bind($self, span_id, /)\n--\n\nMake the open span ``span_id`` the whole chain of this context while in the block.")},
    {"_restart_ids", FAST(collector_restart_ids), METH_FASTCALL, NULL},
    {"_open_ids", (PyCFunction)collector_open_ids, METH_NOARGS, NULL},
    {"_chain_length", (PyCFunction)collector_chain_length, METH_NOARGS, NULL},
    {"_handle", (PyCFunction)collector_handle, METH_O, NULL},
    {NULL},
};

static PyType_Slot collector_slots[] = {
    {Py_tp_doc, (void *)"The core interface of SpanCollector (compiled; see the collector's docstring)."},
    {Py_tp_new, collector_new},
    {Py_tp_init, collector_init},
    {Py_tp_dealloc, collector_dealloc},
    {Py_tp_traverse, collector_traverse},
    {Py_tp_clear, collector_clear},
    {Py_tp_methods, collector_methods},
    {Py_tp_members, collector_members},
    {Py_tp_getset, collector_getset},
    {0, NULL},
};

static PyType_Spec collector_spec = {
    .name = "harn_async_trace._core._ccore.CoreCollector",
    .basicsize = sizeof(Collector),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = collector_slots,
};

/* ------------------------------------------------------------------------ */
/* Scope type (public name: span)                                           */

static Collector *
current_collector(State *st)
{
    /* A new reference to the current collector. */
    if (st->current_var == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "harn_async_trace.context is not imported yet");
        return NULL;
    }
    PyObject *collector;
    if (PyContextVar_Get(st->current_var, NULL, &collector) < 0) {
        return NULL;
    }
    if (collector == NULL || !PyObject_TypeCheck(collector, st->CollectorType)) {
        PyErr_Format(PyExc_TypeError, "the current collector is not a SpanCollector: %R",
                     collector);
        Py_XDECREF(collector);
        return NULL;
    }
    return (Collector *)collector;
}

static int
scope_traverse(Scope *s, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(s));
    Py_VISIT(s->links);
    Py_VISIT(s->metadata);
    Py_VISIT(s->handle);
    Py_VISIT(s->more);
    return 0;
}

static int
scope_clear(Scope *s)
{
    Py_CLEAR(s->links);
    Py_CLEAR(s->metadata);
    Py_CLEAR(s->handle);
    Py_CLEAR(s->more);
    return 0;
}

static void
scope_dealloc(Scope *s)
{
    PyTypeObject *tp = Py_TYPE(s);
    PyObject_GC_UnTrack(s);
    scope_clear(s);
    Py_CLEAR(s->kind);
    Py_CLEAR(s->name);
    PyObject_GC_Del(s);
    Py_DECREF(tp);
}

static PyObject *
scope_checked_links(PyObject *links, State *st)
{
    int ok = PyList_Check(links) || PyTuple_Check(links);
    if (ok) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(links);
        for (Py_ssize_t i = 0; i < n && ok; i++) {
            PyObject *link = PySequence_Fast_GET_ITEM(links, i);
            if (Py_TYPE(link) != (PyTypeObject *)st->SpanLink) {
                ok = PyObject_IsInstance(link, st->SpanLink);
                if (ok < 0) {
                    return NULL;
                }
            }
        }
    }
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "links must be a list of SpanLink, got %R", links);
        return NULL;
    }
    return PySequence_List(links);
}

/* span(kind, name, *, links=None, detached=False, new_trace=False, **metadata) */
static PyObject *
scope_vectorcall(PyObject *type, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    State *st = (State *)PyType_GetModuleState((PyTypeObject *)type);
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *kind = nargs > 0 ? args[0] : NULL, *name = nargs > 1 ? args[1] : NULL;
    PyObject *links = NULL, *metadata = NULL;
    int detached = 0, new_trace = 0;
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "span() takes 2 positional arguments but %zd were given",
                     nargs);
        return NULL;
    }
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k), *value = args[nargs + k];
        PyObject **slot = NULL;
        if (PyUnicode_Compare(key, st->args[ARG_KIND]) == 0) {
            slot = &kind;
        }
        else if (PyUnicode_Compare(key, st->args[ARG_NAME]) == 0) {
            slot = &name;
        }
        if (slot != NULL) {
            if (*slot != NULL) {
                PyErr_Format(PyExc_TypeError, "span() got multiple values for argument '%S'",
                             key);
                goto fail;
            }
            *slot = value;
            continue;
        }
        if (PyUnicode_Compare(key, st->args[ARG_LINKS]) == 0) {
            links = value;
        }
        else if (PyUnicode_Compare(key, st->args[ARG_DETACHED]) == 0) {
            if ((detached = PyObject_IsTrue(value)) < 0) {
                goto fail;
            }
        }
        else if (PyUnicode_Compare(key, st->args[ARG_NEW_TRACE]) == 0) {
            if ((new_trace = PyObject_IsTrue(value)) < 0) {
                goto fail;
            }
        }
        else {
            if (metadata == NULL && (metadata = PyDict_New()) == NULL) {
                goto fail;
            }
            if (PyDict_SetItem(metadata, key, value) < 0) {
                goto fail;
            }
        }
    }
    if (kind == NULL || name == NULL) {
        PyErr_Format(PyExc_TypeError, "span() missing required argument '%s'",
                     kind == NULL ? "kind" : "name");
        goto fail;
    }
    PyObject *exact_name = checked_name(name);
    if (exact_name == NULL) {
        goto fail;
    }
    PyObject *exact_kind = checked_kind(st, kind);
    if (exact_kind == NULL) {
        Py_DECREF(exact_name);
        goto fail;
    }
    PyObject *kept_links = NULL;
    if (links != NULL && links != Py_None) {
        kept_links = scope_checked_links(links, st);
        if (kept_links == NULL) {
            Py_DECREF(exact_name);
            Py_DECREF(exact_kind);
            goto fail;
        }
    }
    Scope *s = PyObject_GC_New(Scope, st->ScopeType);
    if (s == NULL) {
        Py_DECREF(exact_name);
        Py_DECREF(exact_kind);
        Py_XDECREF(kept_links);
        goto fail;
    }
    s->kind = exact_kind;
    s->name = exact_name;
    s->links = kept_links;
    s->metadata = metadata;
    s->handle = NULL;
    s->more = NULL;
    s->detached = (char)detached;
    s->new_trace = (char)new_trace;
    s->plain = metadata == NULL && (kept_links == NULL || PyList_GET_SIZE(kept_links) == 0)
               && !detached && !new_trace;
    PyObject_GC_Track(s);
    return (PyObject *)s;
fail:
    Py_XDECREF(metadata);
    return NULL;
}

/* Open one span of this scope: its handle (the disabled one when off). */
static PyObject *
scope_open_handle(Scope *s)
{
    State *st = handle_state((PyObject *)s);
    Collector *collector = current_collector(st);
    if (collector == NULL) {
        return NULL;
    }
    PyObject *h;
    if (!collector->enabled) {
        h = st->disabled;
        Py_INCREF(h);
    }
    else if (s->plain) {
        h = (PyObject *)core_open(collector, s->kind, s->name, NULL, 0, 1, 0, NULL);
    }
    else {
        h = (PyObject *)core_open(collector, s->kind, s->name, s->links, s->detached, 1,
                                  s->new_trace, s->metadata);
    }
    Py_DECREF(collector);
    return h;
}

static int
record_outcome(State *st, Handle *h, PyObject *exc)
{
    /* Written while the span is still open (then it is closed). */
    if (exc == NULL || exc == Py_None
        || PyErr_GivenExceptionMatches(exc, PyExc_GeneratorExit)) {
        return 0;
    }
    int cancelled = PyObject_IsInstance(exc, st->CancelledError);
    if (cancelled < 0) {
        return -1;
    }
    if (!cancelled) {
        PyObject *type_name = PyType_GetName(Py_TYPE(exc));
        if (type_name == NULL) {
            return -1;
        }
        cancelled = PyUnicode_Compare(type_name, st->s_Cancelled) == 0;
        if (!cancelled) {
            PyObject *message = PyObject_Str(exc);
            int status = -1;
            if (message != NULL && h->collector != NULL) {
                status = handle_set_metadata_impl(h, st->s_error, message, 0);
                if (status == 0 && h->collector != NULL) {
                    status = handle_set_metadata_impl(h, st->s_error_type, type_name, 0);
                }
            }
            else if (message != NULL) {
                status = 0; /* ended while __str__ ran */
            }
            Py_XDECREF(message);
            Py_DECREF(type_name);
            return status;
        }
        Py_DECREF(type_name);
    }
    return handle_set_metadata_impl(h, st->s_cancelled, Py_True, 0);
}

/* End the span of `handle` (recording `exc` first); no-op when not live. */
static int
scope_close_handle(State *st, PyObject *handle, PyObject *exc)
{
    if (Py_TYPE(handle) != st->HandleType) {
        PyErr_Format(PyExc_TypeError, "not a span handle: %R", handle);
        return -1;
    }
    Handle *h = (Handle *)handle;
    if (h->collector == NULL) { /* disabled, ended already, or abandoned by a reset */
        return 0;
    }
    Collector *collector = h->collector;
    Py_INCREF(collector);
    Py_INCREF(h);
    int status = record_outcome(st, h, exc);
    if (status == 0 && h->collector == collector) {
        status = core_close(collector, h->span_id, 0, NULL) < 0 ? -1 : 0;
    }
    Py_DECREF(h);
    Py_DECREF(collector);
    return status;
}

static PyObject *
scope_enter(Scope *s, PyObject *Py_UNUSED(ignored))
{
    PyObject *h = scope_open_handle(s);
    if (h == NULL) {
        return NULL;
    }
    if (s->handle == NULL) {
        Py_INCREF(h);
        s->handle = h;
    }
    else {
        if (s->more == NULL && (s->more = PyList_New(0)) == NULL) {
            Py_DECREF(h);
            return NULL;
        }
        if (PyList_Append(s->more, h) < 0) {
            Py_DECREF(h);
            return NULL;
        }
    }
    return h;
}

/* The entry this task's exit belongs to (new reference). Several entries
 * are open: the innermost one on this task's chain is the block exiting
 * (blocks nest within a task). */
static PyObject *
scope_take_entry(Scope *s)
{
    if (s->more == NULL || PyList_GET_SIZE(s->more) == 0) {
        PyObject *h = s->handle;
        s->handle = NULL;
        Py_CLEAR(s->more);
        return h;
    }
    PyObject *entries = PyList_New(0);
    if (entries == NULL || PyList_Append(entries, s->handle) < 0
        || PyList_SetSlice(entries, 1, 1, s->more) < 0) {
        Py_XDECREF(entries);
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(entries);
    Py_ssize_t chosen = n - 1;
    int done = 0;
    for (Py_ssize_t g = 0; g < n && !done; g++) {
        Handle *first = (Handle *)PyList_GET_ITEM(entries, g);
        Collector *collector = first->collector;
        if (collector == NULL) {
            continue;
        }
        int seen = 0; /* this collector was already searched */
        for (Py_ssize_t e = 0; e < g && !seen; e++) {
            seen = ((Handle *)PyList_GET_ITEM(entries, e))->collector == collector;
        }
        if (seen) {
            continue;
        }
        PyObject *top;
        if (PyContextVar_Get(collector->chain, NULL, &top) < 0) {
            Py_DECREF(entries);
            return NULL;
        }
        for (Handle *node = top == Py_None ? NULL : (Handle *)top; node && !done;
             node = node->prev) {
            if (node->collector == NULL) {
                continue;
            }
            for (Py_ssize_t e = 0; e < n; e++) {
                if ((Handle *)PyList_GET_ITEM(entries, e) == node) {
                    chosen = e;
                    done = 1;
                    break;
                }
            }
        }
        Py_DECREF(top);
    }
    PyObject *h = PyList_GET_ITEM(entries, chosen);
    Py_INCREF(h);
    if (PyList_SetSlice(entries, chosen, chosen + 1, NULL) < 0) {
        Py_DECREF(h);
        Py_DECREF(entries);
        return NULL;
    }
    PyObject *rest = PyList_GetSlice(entries, 1, PyList_GET_SIZE(entries));
    if (rest == NULL) {
        Py_DECREF(h);
        Py_DECREF(entries);
        return NULL;
    }
    PyObject *first = PyList_GET_ITEM(entries, 0);
    Py_INCREF(first);
    Py_XSETREF(s->handle, first);
    if (PyList_GET_SIZE(rest) == 0) {
        Py_DECREF(rest);
        rest = NULL;
    }
    Py_XSETREF(s->more, rest);
    Py_DECREF(entries);
    /* The handle's own reference left s->handle/s->more with the lists. */
    return h;
}

static PyObject *
scope_exit_impl(Scope *s, PyObject *exc)
{
    State *st = handle_state((PyObject *)s);
    PyObject *h = scope_take_entry(s);
    if (h == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "span() exited more often than entered");
        }
        return NULL;
    }
    int status = scope_close_handle(st, h, exc);
    Py_DECREF(h);
    if (status < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
scope_exit(Scope *s, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "__exit__() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    return scope_exit_impl(s, args[1]);
}

static PyObject *
scope_aenter(Scope *s, PyObject *Py_UNUSED(ignored))
{
    PyObject *h = scope_enter(s, NULL);
    if (h == NULL) {
        return NULL;
    }
    /* Done at once: no coroutine object per block. */
    PyObject *ready = ready_new(handle_state((PyObject *)s), h);
    Py_DECREF(h);
    return ready;
}

static PyObject *
scope_aexit(Scope *s, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *result = scope_exit(s, args, nargs);
    if (result == NULL) {
        return NULL;
    }
    Py_DECREF(result);
    PyObject *ready = handle_state((PyObject *)s)->ready_none;
    Py_INCREF(ready);
    return ready;
}

static PyObject *
scope_open(Scope *s, PyObject *Py_UNUSED(ignored))
{
    return scope_open_handle(s);
}

static PyObject *
scope_close(Scope *s, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "_close() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (scope_close_handle(handle_state((PyObject *)s), args[0], args[1]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
scope_call(Scope *s, PyObject *args, PyObject *kwargs)
{
    PyObject *func;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "span(...)() takes the function to decorate only");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "span", 1, 1, &func)) {
        return NULL;
    }
    State *st = handle_state((PyObject *)s);
    return PyObject_CallFunctionObjArgs(st->decorate, (PyObject *)s, func, NULL);
}

static PyObject *
scope_get_metadata(Scope *s, void *Py_UNUSED(closure))
{
    if (s->metadata == NULL) {
        return PyDict_New();
    }
    return PyDict_Copy(s->metadata);
}

static PyObject *
scope_get_bool(Scope *s, void *closure)
{
    return PyBool_FromLong(closure == NULL ? s->detached : s->new_trace);
}

static PyObject *
scope_get_links(Scope *s, void *Py_UNUSED(closure))
{
    PyObject *links = s->links == NULL ? Py_None : s->links;
    Py_INCREF(links);
    return links;
}

static PyGetSetDef scope_getset[] = {
    {"metadata", (getter)scope_get_metadata, NULL, PyDoc_STR("Metadata every entry opens with (a copy)."), NULL},
    {"detached", (getter)scope_get_bool, NULL, PyDoc_STR("Whether entries open with no parent."), NULL},
    {"new_trace", (getter)scope_get_bool, NULL, PyDoc_STR("Whether entries root a fresh trace."), (void *)1},
    {"links", (getter)scope_get_links, NULL, PyDoc_STR("Links every entry is opened with, or None."), NULL},
    {NULL},
};

static PyMemberDef scope_members[] = {
    {"kind", T_OBJECT, offsetof(Scope, kind), READONLY, PyDoc_STR("The SpanKind of every entry.")},
    {"name", T_OBJECT, offsetof(Scope, name), READONLY, PyDoc_STR("The name of every entry.")},
    {NULL},
};

static PyMethodDef scope_methods[] = {
    {"__enter__", (PyCFunction)scope_enter, METH_NOARGS, NULL},
    {"__exit__", FAST(scope_exit), METH_FASTCALL, NULL},
    {"__aenter__", (PyCFunction)scope_aenter, METH_NOARGS, NULL},
    {"__aexit__", FAST(scope_aexit), METH_FASTCALL, NULL},
    {"_open", (PyCFunction)scope_open, METH_NOARGS,
     PyDoc_STR("Open one span of this scope; its handle (the disabled one when tracing is off).")},
    {"_close", FAST(scope_close), METH_FASTCALL,
     PyDoc_STR("End the span of ``handle``, recording ``exc`` first (while the span is open).")},
    {NULL},
};

PyDoc_STRVAR(scope_doc,
"span(kind, name, *, links=None, detached=False, new_trace=False, **metadata)\n--\n\n"
"Trace a block or a function as one span.\n\n"
"``links`` are recorded on the span; ``detached=True`` opens it with no\n"
"parent (its children still nest under it); ``new_trace=True`` makes it\n"
"the root of a fresh trace id that every span under it carries, in this\n"
"task and in tasks started under it. Other keywords are metadata.\n\n"
"One ``span`` object may be entered again while it is open, nested or\n"
"from other tasks: each entry is its own span.");

static PyType_Slot scope_slots[] = {
    {Py_tp_doc, (void *)scope_doc},
    {Py_tp_dealloc, scope_dealloc},
    {Py_tp_traverse, scope_traverse},
    {Py_tp_clear, scope_clear},
    {Py_tp_call, scope_call},
    {Py_tp_methods, scope_methods},
    {Py_tp_members, scope_members},
    {Py_tp_getset, scope_getset},
    {0, NULL},
};

static PyType_Spec scope_spec = {
    .name = "harn_async_trace.span",
    .basicsize = sizeof(Scope),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = scope_slots,
};

/* ------------------------------------------------------------------------ */
/* module functions: the hot path of the module API                         */

static PyObject *
api_span_start(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    State *st = module_state(module);
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "span_start() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    Collector *collector = current_collector(st);
    if (collector == NULL) {
        return NULL;
    }
    PyObject *result;
    if (!collector->enabled) {
        result = st->zero;
        Py_INCREF(result);
    }
    else {
        Handle *h = core_open(collector, args[0], args[1], NULL, 0, 1, 0, NULL);
        result = h == NULL ? NULL : h->span_id;
        Py_XINCREF(result);
        Py_XDECREF(h);
    }
    Py_DECREF(collector);
    return result;
}

/* Truth of a span id without a call for ints (0 means "no span"). */
static inline int
id_given(PyObject *span_id)
{
    if (PyLong_CheckExact(span_id)) {
        return Py_SIZE(span_id) != 0;
    }
    return PyObject_IsTrue(span_id);
}

static PyObject *
api_set_metadata(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "span_set_metadata() takes 3 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    int given = id_given(args[0]);
    if (given <= 0) {
        return given < 0 ? NULL : Py_NewRef(Py_None);
    }
    Collector *collector = current_collector(module_state(module));
    if (collector == NULL) {
        return NULL;
    }
    int status = core_set_metadata(collector, args[0], args[1], args[2]);
    Py_DECREF(collector);
    if (status < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
api_span_end(PyObject *module, PyObject *span_id)
{
    int given = id_given(span_id);
    if (given <= 0) {
        return given < 0 ? NULL : Py_NewRef(Py_None);
    }
    Collector *collector = current_collector(module_state(module));
    if (collector == NULL) {
        return NULL;
    }
    PyObject *result = collector_end(collector, span_id);
    Py_DECREF(collector);
    return result;
}

static PyObject *
api_span_close(PyObject *module, PyObject *span_id)
{
    int given = id_given(span_id);
    if (given <= 0) {
        return given < 0 ? NULL : Py_NewRef(Py_False);
    }
    Collector *collector = current_collector(module_state(module));
    if (collector == NULL) {
        return NULL;
    }
    int status = core_close(collector, span_id, 0, NULL);
    Py_DECREF(collector);
    if (status < 0) {
        return NULL;
    }
    return PyBool_FromLong(status);
}

static PyObject *
api_current_span_id(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    Collector *collector = current_collector(module_state(module));
    if (collector == NULL) {
        return NULL;
    }
    PyObject *result;
    if (!collector->enabled) {
        result = Py_NewRef(Py_None);
    }
    else {
        result = collector_current_span_id(collector, NULL);
    }
    Py_DECREF(collector);
    return result;
}

/* ------------------------------------------------------------------------ */
/* configuration (once, from __init__.py)                                   */

static int
take(PyObject *config, const char *key, PyObject **slot)
{
    PyObject *value = PyDict_GetItemString(config, key); /* borrowed */
    if (value == NULL) {
        PyErr_Format(PyExc_KeyError, "_configure() needs %s", key);
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(*slot, value);
    return 0;
}

static PyObject *
ccore_configure(PyObject *module, PyObject *config)
{
    State *st = module_state(module);
    if (!PyDict_Check(config)) {
        PyErr_SetString(PyExc_TypeError, "_configure() takes a dict");
        return NULL;
    }
    PyObject *events = NULL;
    if (take(config, "current_clock", &st->current_clock) < 0
        || take(config, "system_clock", &st->system_clock) < 0
        || take(config, "SystemClock", &st->SystemClock) < 0
        || take(config, "events", &events) < 0
        || take(config, "Span", &st->Span) < 0
        || take(config, "ClockBinding", &st->ClockBinding) < 0
        || take(config, "SpanLink", &st->SpanLink) < 0
        || take(config, "SpanEvent", &st->SpanEvent) < 0
        || take(config, "SpanKind", &st->SpanKind) < 0
        || take(config, "kind_by_value", &st->kind_by_value) < 0
        || take(config, "coerce_kind", &st->coerce_kind) < 0
        || take(config, "new_trace_id", &st->new_trace_id) < 0
        || take(config, "CancelledError", &st->CancelledError) < 0
        || take(config, "decorate", &st->decorate) < 0
        || take(config, "time_monotonic_ns", &st->time_monotonic_ns) < 0) {
        Py_XDECREF(events);
        return NULL;
    }
    PyObject *dict = PyModule_GetDict(events); /* borrowed */
    Py_DECREF(events);
    if (dict == NULL) {
        return NULL;
    }
    Py_INCREF(dict);
    Py_XSETREF(st->events_dict, dict);
    for (int i = 0; i < SLOT_COUNT; i++) {
        PyObject *descr = PyObject_GetAttrString(st->Span, slot_names[i]);
        if (descr == NULL) {
            return NULL;
        }
        if (Py_TYPE(descr)->tp_descr_set == NULL) {
            Py_DECREF(descr);
            PyErr_Format(PyExc_TypeError, "Span.%s is not a slot", slot_names[i]);
            return NULL;
        }
        Py_XSETREF(st->slots[i], descr);
    }
    st->configured = 1;
    Py_RETURN_NONE;
}

static PyObject *
ccore_set_current_var(PyObject *module, PyObject *var)
{
    if (!PyContextVar_CheckExact(var)) {
        PyErr_SetString(PyExc_TypeError, "_set_current_var() takes a ContextVar");
        return NULL;
    }
    State *st = module_state(module);
    Py_INCREF(var);
    Py_XSETREF(st->current_var, var);
    Py_RETURN_NONE;
}

static PyMethodDef ccore_functions[] = {
    {"span_start", FAST(api_span_start), METH_FASTCALL,
     PyDoc_STR("span_start(kind, name, /)\n--\n\nOpen a span under the current task's innermost open span; 0 when disabled.")},
    {"span_set_metadata", FAST(api_set_metadata), METH_FASTCALL,
     PyDoc_STR("span_set_metadata(span_id, key, value, /)\n--\n\nSet metadata on an open span (ignored for 0, unknown or ended ids).")},
    {"span_attach_metadata", FAST(api_set_metadata), METH_FASTCALL,
     PyDoc_STR("span_attach_metadata(span_id, key, value, /)\n--\n\nSet metadata on an open span; an ended span is left alone (seed 0.9.4).")},
    {"span_end", (PyCFunction)api_span_end, METH_O,
     PyDoc_STR("span_end(span_id, /)\n--\n\nEnd a span and return its record; None for 0 or ids that are not open.")},
    {"span_close", (PyCFunction)api_span_close, METH_O,
     PyDoc_STR("span_close(span_id, /)\n--\n\nEnd a span without building its record; True if it was open (the cheap end).")},
    {"current_span_id", (PyCFunction)api_current_span_id, METH_NOARGS,
     PyDoc_STR("current_span_id()\n--\n\nThe current task's innermost open span id; None when none or disabled.")},
    {"_configure", (PyCFunction)ccore_configure, METH_O, NULL},
    {"_set_current_var", (PyCFunction)ccore_set_current_var, METH_O, NULL},
    {NULL},
};

/* ------------------------------------------------------------------------ */
/* module                                                                   */

static PyObject *
add_type(PyObject *module, PyType_Spec *spec, const char *attr)
{
    PyObject *type = PyType_FromModuleAndSpec(module, spec, NULL);
    if (type == NULL) {
        return NULL;
    }
    if (attr != NULL && PyModule_AddObjectRef(module, attr, type) < 0) {
        Py_DECREF(type);
        return NULL;
    }
    return type;
}

static int
ccore_exec(PyObject *module)
{
    State *st = module_state(module);
    if (!(st->CollectorType = (PyTypeObject *)add_type(module, &collector_spec, "CoreCollector"))
        || !(st->HandleType = (PyTypeObject *)add_type(module, &handle_spec, "SpanHandle"))
        || !(st->ChainBindingType = (PyTypeObject *)add_type(module, &chain_binding_spec,
                                                             "ChainBinding"))
        || !(st->ScopeType = (PyTypeObject *)add_type(module, &scope_spec, "span"))
        || !(st->ReadyType = (PyTypeObject *)add_type(module, &ready_spec, NULL))) {
        return -1;
    }
    /* No Py_tp_vectorcall slot before 3.12: set the constructor directly. */
    st->ScopeType->tp_vectorcall = scope_vectorcall;
    st->disabled = handle_alloc(st);
    if (st->disabled == NULL) {
        return -1;
    }
    ((Handle *)st->disabled)->span_id = PyLong_FromLong(0);
    PyObject_GC_Track(st->disabled);
    if (((Handle *)st->disabled)->span_id == NULL
        || PyModule_AddObjectRef(module, "DISABLED", st->disabled) < 0) {
        return -1;
    }
    st->ready_none = ready_new(st, Py_None);
    st->zero = PyLong_FromLong(0);
    if (st->ready_none == NULL || st->zero == NULL) {
        return -1;
    }
    struct { PyObject **slot; const char *text; } names[] = {
        {&st->s_start_subs, "_start_subscribers"}, {&st->s_end_subs, "_end_subscribers"},
        {&st->s_monotonic_ns, "monotonic_ns"}, {&st->s_wall_ns, "wall_ns"},
        {&st->s_trace_id, "trace_id"}, {&st->s_cancelled, "cancelled"},
        {&st->s_error, "error"}, {&st->s_error_type, "error_type"},
        {&st->s_Cancelled, "Cancelled"}, {&st->s_name, "name"},
        {&st->s_emit_start, "emit_start"}, {&st->s_emit_end, "emit_end"},
        {&st->s_SpanStartEvent, "SpanStartEvent"}, {&st->s_SpanEndEvent, "SpanEndEvent"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL) {
            return -1;
        }
    }
    for (int i = 0; i < ARG_COUNT; i++) {
        if ((st->args[i] = PyUnicode_InternFromString(arg_names[i])) == NULL) {
            return -1;
        }
    }
    return 0;
}

static int
ccore_traverse(PyObject *module, visitproc visit, void *arg)
{
    State *st = module_state(module);
    Py_VISIT(st->CollectorType);
    Py_VISIT(st->HandleType);
    Py_VISIT(st->ChainBindingType);
    Py_VISIT(st->ScopeType);
    Py_VISIT(st->ReadyType);
    Py_VISIT(st->current_var);
    Py_VISIT(st->current_clock);
    Py_VISIT(st->system_clock);
    Py_VISIT(st->SystemClock);
    Py_VISIT(st->events_dict);
    Py_VISIT(st->Span);
    for (int i = 0; i < SLOT_COUNT; i++) {
        Py_VISIT(st->slots[i]);
    }
    Py_VISIT(st->ClockBinding);
    Py_VISIT(st->SpanLink);
    Py_VISIT(st->SpanEvent);
    Py_VISIT(st->SpanKind);
    Py_VISIT(st->kind_by_value);
    Py_VISIT(st->coerce_kind);
    Py_VISIT(st->new_trace_id);
    Py_VISIT(st->CancelledError);
    Py_VISIT(st->decorate);
    Py_VISIT(st->time_monotonic_ns);
    Py_VISIT(st->disabled);
    Py_VISIT(st->ready_none);
    return 0;
}

static int
ccore_clear(PyObject *module)
{
    State *st = module_state(module);
    Py_CLEAR(st->CollectorType);
    Py_CLEAR(st->HandleType);
    Py_CLEAR(st->ChainBindingType);
    Py_CLEAR(st->ScopeType);
    Py_CLEAR(st->ReadyType);
    Py_CLEAR(st->current_var);
    Py_CLEAR(st->current_clock);
    Py_CLEAR(st->system_clock);
    Py_CLEAR(st->SystemClock);
    Py_CLEAR(st->events_dict);
    Py_CLEAR(st->Span);
    for (int i = 0; i < SLOT_COUNT; i++) {
        Py_CLEAR(st->slots[i]);
    }
    Py_CLEAR(st->ClockBinding);
    Py_CLEAR(st->SpanLink);
    Py_CLEAR(st->SpanEvent);
    Py_CLEAR(st->SpanKind);
    Py_CLEAR(st->kind_by_value);
    Py_CLEAR(st->coerce_kind);
    Py_CLEAR(st->new_trace_id);
    Py_CLEAR(st->CancelledError);
    Py_CLEAR(st->decorate);
    Py_CLEAR(st->time_monotonic_ns);
    Py_CLEAR(st->disabled);
    Py_CLEAR(st->ready_none);
    Py_CLEAR(st->zero);
    Py_CLEAR(st->s_start_subs);
    Py_CLEAR(st->s_end_subs);
    Py_CLEAR(st->s_monotonic_ns);
    Py_CLEAR(st->s_wall_ns);
    Py_CLEAR(st->s_trace_id);
    Py_CLEAR(st->s_cancelled);
    Py_CLEAR(st->s_error);
    Py_CLEAR(st->s_error_type);
    Py_CLEAR(st->s_Cancelled);
    Py_CLEAR(st->s_name);
    Py_CLEAR(st->s_emit_start);
    Py_CLEAR(st->s_emit_end);
    Py_CLEAR(st->s_SpanStartEvent);
    Py_CLEAR(st->s_SpanEndEvent);
    for (int i = 0; i < ARG_COUNT; i++) {
        Py_CLEAR(st->args[i]);
    }
    st->configured = 0;
    return 0;
}

static void
ccore_free(void *module)
{
    ccore_clear((PyObject *)module);
}

static PyModuleDef_Slot ccore_module_slots[] = {
    {Py_mod_exec, ccore_exec},
    {0, NULL},
};

static struct PyModuleDef ccore_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "harn_async_trace._core._ccore",
    .m_doc = "The compiled tracing core (see harn_async_trace/_core/__init__.py).",
    .m_size = sizeof(State),
    .m_methods = ccore_functions,
    .m_slots = ccore_module_slots,
    .m_traverse = ccore_traverse,
    .m_clear = ccore_clear,
    .m_free = ccore_free,
};

PyMODINIT_FUNC
PyInit__ccore(void)
{
    return PyModuleDef_Init(&ccore_module);
}
