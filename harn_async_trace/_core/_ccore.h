/* The compiled tracing core (shared declarations): the collector's core
 * interface, the open-span handle, span() and the hot functions of the
 * module API. Sources: _ccore.c (module, configuration, module API),
 * ccore_store.c (clock bindings, rows, Span records, events),
 * ccore_spans.c (opening, ending, editing spans), ccore_collector.c,
 * ccore_types.c (SpanHandle, ChainBinding, Ready), ccore_scope.c (span).
 *
 * It implements exactly what harn_async_trace/_core/_pure.py,
 * _pure_scoped.py and _pure_api.py do in Python (the fallback), with the
 * same results, errors and ids; docs/performance.md explains the design.
 *
 * Rules every file keeps:
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
 *  - Clocks are read through their Python `monotonic_ns`, looked up once per
 *    collector and clock; when that is time.monotonic_ns itself (the system
 *    clock) it is read at its source, CPython's monotonic clock. Times equal
 *    the pure core's.
 */
#ifndef HARN_CCORE_H
#define HARN_CCORE_H

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

/* Shared between this extension's files, not exported from the .so. */
#if defined(__GNUC__)
#define HT_INTERNAL __attribute__((visibility("hidden")))
#else
#define HT_INTERNAL
#endif

#define FAST(f) (PyCFunction)(void (*)(void))(f)

/* ------------------------------------------------------------------------ */
/* module state                                                             */

enum {
    SLOT_BINDING, SLOT_DURATION, SLOT_EVENTS, SLOT_KIND, SLOT_LANE, SLOT_LINKS,
    SLOT_METADATA, SLOT_NAME, SLOT_PARENT, SLOT_SPAN_ID, SLOT_START, SLOT_TRACE,
    SLOT_COUNT
};

static const char *const slot_names[SLOT_COUNT] = {
    "_binding", "duration_ns", "_events", "kind", "lane", "_links",
    "_metadata", "name", "parent_id", "span_id", "start_ns", "trace_id",
};

enum {
    ARG_KIND, ARG_NAME, ARG_LINKS, ARG_DETACHED, ARG_PUSH, ARG_NEW_TRACE, ARG_METADATA,
    ARG_INSTANT, ARG_SPAN_ID, ARG_ATTRIBUTES, ARG_AT_NS, ARG_COUNT
};

static const char *const arg_names[ARG_COUNT] = {
    "kind", "name", "links", "detached", "push", "new_trace", "metadata", "instant",
    "span_id", "attributes", "at_ns",
};

/* Collector methods the module API and span() call: when type(collector)
 * replaces one (a subclass, a patch), the replacement is called, as the
 * pure core (which calls them by name) does. */
enum { M_OPEN, M_CLOSE, M_END, M_SET_METADATA, M_RECORD_EVENT, METHOD_COUNT };

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
    PyObject *root_parent; /* events._root_parent: a one-item list holding the hook or None */
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
    /* CoreCollector's own methods, to tell when a subclass replaced one. */
    PyObject *method_names[METHOD_COUNT], *methods[METHOD_COUNT];
    PyObject *args[ARG_COUNT];
} State;

extern struct PyModuleDef ccore_module;


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
/* internal functions (one definition each, in the files above)             */

HT_INTERNAL int read_int64(PyObject *value, const char *what, int64_t *out);
HT_INTERNAL int call_int64(PyObject *func, const char *what, int64_t *out);
HT_INTERNAL PyObject *new_id_or_none(int has, int64_t value);
HT_INTERNAL PyObject *checked_kind(State *st, PyObject *kind);
HT_INTERNAL PyObject *checked_name(PyObject *name);
HT_INTERNAL int parse_args(State *st, const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const int *want, int nwant, int nrequired, PyObject **out);
HT_INTERNAL int truth(PyObject *value, int missing);
HT_INTERNAL void clear_bindings(Binding *bindings, Py_ssize_t n);
HT_INTERNAL Py_ssize_t binding_for(Collector *self, PyObject *clock);
HT_INTERNAL int set_slot(State *st, PyObject *span, int slot, PyObject *value);
HT_INTERNAL PyObject *build_span(State *st, int64_t span_id, int has_parent, int64_t parent_id, PyObject *kind, PyObject *name, int64_t start_ns, int64_t duration_ns, int64_t lane, PyObject *trace_id, PyObject *binding_object, PyObject *metadata, PyObject *links, PyObject *events);
HT_INTERNAL PyObject *span_of_handle(Collector *self, Handle *h);
HT_INTERNAL PyObject *bindings_snapshot(Collector *self);
HT_INTERNAL int row_side(PyObject *table, PyObject *key, int present, PyObject **out);
HT_INTERNAL PyObject *build_rows(Collector *self, Row *rows, Py_ssize_t n, PyObject *meta, PyObject *links, PyObject *events, PyObject *bindings, int live);
HT_INTERNAL void free_rows(Row *rows, Py_ssize_t n);
HT_INTERNAL PyObject *call_events(State *st, PyObject *name, PyObject *const *args, Py_ssize_t nargs);
HT_INTERNAL int emit_start(Collector *self, Handle *h);
HT_INTERNAL int emit_end(Collector *self, PyObject *span, int dropped);
HT_INTERNAL PyObject *checked_links(Collector *self, PyObject *links);
HT_INTERNAL PyObject *checked_metadata(Collector *self, PyObject *metadata);
HT_INTERNAL PyObject *handle_alloc(State *st);
HT_INTERNAL Handle *core_open(Collector *self, PyObject *kind_arg, PyObject *name_arg, PyObject *links_arg, int detached, int push, int new_trace, PyObject *metadata_arg);
HT_INTERNAL int finish(Collector *self, Handle *h, int instant, PyObject **record);
HT_INTERNAL int core_close(Collector *self, PyObject *span_id, int instant, PyObject **record);
HT_INTERNAL int handle_set_metadata_impl(Handle *h, PyObject *key, PyObject *value, int if_absent);
HT_INTERNAL int core_set_metadata(Collector *self, PyObject *span_id, PyObject *key, PyObject *value);
HT_INTERNAL PyObject *call_replaced(Collector *c, PyObject *method, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
HT_INTERNAL int via_set_metadata(Collector *c, PyObject *span_id, PyObject *key, PyObject *value);
HT_INTERNAL int core_attach_if_absent(Collector *self, PyObject *span_id, PyObject *key, PyObject *value);
HT_INTERNAL int handle_record_event_impl(Handle *h, PyObject *name, PyObject *attributes, PyObject *at_ns);
HT_INTERNAL PyObject *link_of(State *st, PyObject *trace_id, PyObject *span_id);
HT_INTERNAL int handle_traverse(Handle *h, visitproc visit, void *arg);
HT_INTERNAL int handle_clear(Handle *h);
HT_INTERNAL void handle_dealloc(Handle *h);
HT_INTERNAL PyObject *handle_set_metadata(Handle *h, PyObject *const *args, Py_ssize_t nargs);
HT_INTERNAL PyObject *handle_record_event(Handle *h, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
HT_INTERNAL PyObject *handle_link(Handle *h, PyObject *Py_UNUSED(ignored));
HT_INTERNAL PyObject *handle_repr(Handle *h);
HT_INTERNAL int chain_binding_traverse(ChainBinding *b, visitproc visit, void *arg);
HT_INTERNAL int chain_binding_clear(ChainBinding *b);
HT_INTERNAL void chain_binding_dealloc(ChainBinding *b);
HT_INTERNAL PyObject *chain_binding_enter(ChainBinding *b, PyObject *Py_UNUSED(ignored));
HT_INTERNAL PyObject *chain_binding_exit(ChainBinding *b, PyObject *const *args, Py_ssize_t nargs);
HT_INTERNAL void ready_dealloc(Ready *r);
HT_INTERNAL PyObject *ready_await(PyObject *self);
HT_INTERNAL PySendResult ready_send(Ready *r, PyObject *Py_UNUSED(arg), PyObject **result);
HT_INTERNAL PyObject *ready_next(Ready *r);
HT_INTERNAL PyObject *ready_new(State *st, PyObject *value);
HT_INTERNAL int collector_fresh_state(Collector *self, int64_t first_id);
HT_INTERNAL PyObject *collector_new(PyTypeObject *type, PyObject *args, PyObject *kwds);
HT_INTERNAL int collector_init(PyObject *self, PyObject *args, PyObject *kwds);
HT_INTERNAL int collector_traverse(Collector *self, visitproc visit, void *arg);
HT_INTERNAL int collector_clear(Collector *self);
HT_INTERNAL void collector_dealloc(Collector *self);
HT_INTERNAL PyObject *collector_open(Collector *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
HT_INTERNAL PyObject *collector_start(Collector *self, PyObject *const *args, Py_ssize_t nargs);
HT_INTERNAL PyObject *collector_close(Collector *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
HT_INTERNAL PyObject *collector_end(Collector *self, PyObject *span_id);
HT_INTERNAL PyObject *collector_set_metadata(Collector *self, PyObject *const *args, Py_ssize_t nargs);
HT_INTERNAL PyObject *collector_attach_metadata_if_absent(Collector *self, PyObject *const *args, Py_ssize_t nargs);
HT_INTERNAL PyObject *collector_rename(Collector *self, PyObject *const *args, Py_ssize_t nargs);
HT_INTERNAL PyObject *collector_record_event(Collector *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
HT_INTERNAL int chain_top(Collector *self, PyObject **top_out, Handle **live_out);
HT_INTERNAL PyObject *collector_current_span_id(Collector *self, PyObject *Py_UNUSED(ignored));
HT_INTERNAL PyObject *collector_chain_length(Collector *self, PyObject *Py_UNUSED(ignored));
HT_INTERNAL PyObject *collector_innermost_of(Collector *self, PyObject *span_ids);
HT_INTERNAL PyObject *collector_span_link(Collector *self, PyObject *span_id);
HT_INTERNAL PyObject *collector_is_open(Collector *self, PyObject *span_id);
HT_INTERNAL PyObject *collector_handle(Collector *self, PyObject *span_id);
HT_INTERNAL PyObject *collector_open_details(Collector *self, PyObject *span_id);
HT_INTERNAL PyObject *collector_open_span_count(Collector *self, PyObject *Py_UNUSED(ignored));
HT_INTERNAL PyObject *collector_finished_count(Collector *self, PyObject *Py_UNUSED(ignored));
HT_INTERNAL PyObject *collector_open_ids(Collector *self, PyObject *Py_UNUSED(ignored));
HT_INTERNAL PyObject *collector_spans(Collector *self, PyObject *Py_UNUSED(ignored));
HT_INTERNAL PyObject *collector_take_spans(Collector *self, PyObject *Py_UNUSED(ignored));
HT_INTERNAL PyObject *collector_reset(Collector *self, PyObject *Py_UNUSED(ignored));
HT_INTERNAL PyObject *collector_restart_ids(Collector *self, PyObject *const *args, Py_ssize_t nargs);
HT_INTERNAL PyObject *collector_bind(Collector *self, PyObject *span_id);
HT_INTERNAL PyObject *get_enabled(Collector *self, void *Py_UNUSED(closure));
HT_INTERNAL int set_enabled(Collector *self, PyObject *value, void *Py_UNUSED(closure));
HT_INTERNAL PyObject *get_trace_id(Collector *self, void *Py_UNUSED(closure));
HT_INTERNAL int set_trace_id(Collector *self, PyObject *value, void *Py_UNUSED(closure));
HT_INTERNAL Collector *current_collector(State *st);
HT_INTERNAL int scope_traverse(Scope *s, visitproc visit, void *arg);
HT_INTERNAL int scope_clear(Scope *s);
HT_INTERNAL void scope_dealloc(Scope *s);
HT_INTERNAL PyObject *scope_checked_links(PyObject *links, State *st);
HT_INTERNAL PyObject *scope_vectorcall(PyObject *type, PyObject *const *args, size_t nargsf, PyObject *kwnames);
HT_INTERNAL PyObject *scope_open_handle(Scope *s);
HT_INTERNAL int record_outcome(State *st, Collector *collector, PyObject *span_id, PyObject *exc);
HT_INTERNAL int scope_close_handle(State *st, PyObject *handle, PyObject *exc);
HT_INTERNAL PyObject *scope_enter(Scope *s, PyObject *Py_UNUSED(ignored));
HT_INTERNAL PyObject *scope_take_entry(Scope *s);
HT_INTERNAL PyObject *scope_exit_impl(Scope *s, PyObject *exc);
HT_INTERNAL PyObject *scope_exit(Scope *s, PyObject *const *args, Py_ssize_t nargs);
HT_INTERNAL PyObject *scope_aenter(Scope *s, PyObject *Py_UNUSED(ignored));
HT_INTERNAL PyObject *scope_aexit(Scope *s, PyObject *const *args, Py_ssize_t nargs);
HT_INTERNAL PyObject *scope_open(Scope *s, PyObject *Py_UNUSED(ignored));
HT_INTERNAL PyObject *scope_close(Scope *s, PyObject *const *args, Py_ssize_t nargs);
HT_INTERNAL PyObject *scope_call(Scope *s, PyObject *args, PyObject *kwargs);
HT_INTERNAL PyObject *scope_get_metadata(Scope *s, void *Py_UNUSED(closure));
HT_INTERNAL PyObject *scope_get_bool(Scope *s, void *closure);
HT_INTERNAL PyObject *scope_get_links(Scope *s, void *Py_UNUSED(closure));
HT_INTERNAL PyObject *api_span_start(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
HT_INTERNAL PyObject *api_set_metadata(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
HT_INTERNAL PyObject *api_span_end(PyObject *module, PyObject *span_id);
HT_INTERNAL PyObject *api_span_close(PyObject *module, PyObject *span_id);
HT_INTERNAL PyObject *api_current_span_id(PyObject *module, PyObject *Py_UNUSED(ignored));
HT_INTERNAL int take(PyObject *config, const char *key, PyObject **slot);
HT_INTERNAL PyObject *ccore_configure(PyObject *module, PyObject *config);
HT_INTERNAL PyObject *ccore_set_current_var(PyObject *module, PyObject *var);
HT_INTERNAL PyObject *add_type(PyObject *module, PyType_Spec *spec, const char *attr);
HT_INTERNAL int ccore_exec(PyObject *module);
HT_INTERNAL int ccore_traverse(PyObject *module, visitproc visit, void *arg);
HT_INTERNAL int ccore_clear(PyObject *module);
HT_INTERNAL void ccore_free(void *module);
extern PyType_Spec handle_spec;
extern PyType_Spec chain_binding_spec;
extern PyType_Spec ready_spec;
extern PyType_Spec collector_spec;
extern PyType_Spec scope_spec;

/* ------------------------------------------------------------------------ */
/* small inline helpers                                                     */

static inline int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
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

/* Truth of a span id without a call for ints (0 means "no span"). */
static inline int
id_given(PyObject *span_id)
{
    if (PyLong_CheckExact(span_id)) {
        return Py_SIZE(span_id) != 0;
    }
    return PyObject_IsTrue(span_id);
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

/* The id of a just-opened handle (new reference), releasing the handle;
 * NULL stays NULL (the open failed). */
static inline PyObject *
id_of(Handle *h)
{
    if (h == NULL) {
        return NULL;
    }
    PyObject *span_id = Py_NewRef(h->span_id);
    Py_DECREF(h);
    return span_id;
}

/* The replacement of CoreCollector.<method> on type(c) (borrowed), or NULL
 * when it is ours: a method-cache lookup. */
static inline PyObject *
replaced(State *st, Collector *c, int which)
{
    PyObject *found = _PyType_Lookup(Py_TYPE(c), st->method_names[which]);
    return (found == NULL || found == st->methods[which]) ? NULL : found;
}

#endif /* HARN_CCORE_H */
