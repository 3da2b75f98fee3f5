/* CoreCollector, the base type of SpanCollector: state, methods, attributes. */
#include "_ccore.h"

/* ------------------------------------------------------------------------ */
/* Collector type (the base of SpanCollector)                               */

HT_INTERNAL int
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

HT_INTERNAL PyObject *
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

HT_INTERNAL int
collector_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    return 0; /* SpanCollector.__init__ checks and sets the limits */
}

HT_INTERNAL int
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

HT_INTERNAL int
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

HT_INTERNAL void
collector_dealloc(Collector *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    collector_clear(self);
    Py_CLEAR(self->module);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

HT_INTERNAL PyObject *
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
    return id_of(core_open(self, a[0], a[1], a[2], detached, push, new_trace, a[6]));
}

HT_INTERNAL PyObject *
collector_start(Collector *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "start() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return id_of(core_open(self, args[0], args[1], NULL, 0, 1, 0, NULL));
}

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

/* rename(span_id, name, /): cold, a field swap on the open handle; open() and
 * close() are untouched (the row takes h->name when the span ends). */
HT_INTERNAL PyObject *
collector_rename(Collector *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "rename() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    /* Checked even when the id is not open, as the pure core does. */
    PyObject *name = checked_name(args[1]);
    if (name == NULL) {
        return NULL;
    }
    /* True == 1 as a dict key: a bool is never span 1. */
    Handle *h = PyBool_Check(args[0]) ? NULL : open_handle(self, args[0]);
    if (h == NULL) {
        Py_DECREF(name);
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_FALSE;
    }
    Py_SETREF(h->name, name);
    Py_RETURN_TRUE;
}

HT_INTERNAL PyObject *
collector_record_event(Collector *self, PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    static const int want[] = {ARG_SPAN_ID, ARG_NAME, ARG_ATTRIBUTES, ARG_AT_NS};
    PyObject *a[4];
    if (kwnames == NULL && nargs >= 2 && nargs <= 3) {
        a[0] = args[0];
        a[1] = args[1];
        a[2] = nargs == 3 ? args[2] : NULL;
        a[3] = NULL;
    }
    else if (parse_args(self->state, "record_event", args, nargs, kwnames, want, 4, 2, a) < 0) {
        return NULL;
    }
    Handle *h = open_handle(self, a[0]);
    if (h == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_FALSE;
    }
    Py_INCREF(h);
    int status = handle_record_event_impl(h, a[1], a[2], a[3]);
    Py_DECREF(h);
    if (status < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

/* The innermost open handle of this context's chain (borrowed; kept alive
 * by the reference *top_out holds), or NULL. */
HT_INTERNAL int
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
collector_is_open(Collector *self, PyObject *span_id)
{
    Handle *h = open_handle(self, span_id);
    if (h == NULL && PyErr_Occurred()) {
        return NULL;
    }
    return PyBool_FromLong(h != NULL);
}

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
collector_open_span_count(Collector *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(PyDict_GET_SIZE(self->open));
}

HT_INTERNAL PyObject *
collector_finished_count(Collector *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(self->nrows);
}

HT_INTERNAL PyObject *
collector_open_ids(Collector *self, PyObject *Py_UNUSED(ignored))
{
    return PyDict_Keys(self->open);
}

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
get_enabled(Collector *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->enabled);
}

HT_INTERNAL int
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

HT_INTERNAL PyObject *
get_trace_id(Collector *self, void *Py_UNUSED(closure))
{
    Py_INCREF(self->trace_id);
    return self->trace_id;
}

HT_INTERNAL int
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
    /* The id -> handle table, as in the pure core (read-only). */
    {"_open", T_OBJECT, offsetof(Collector, open), READONLY, NULL},
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
    {"rename", FAST(collector_rename), METH_FASTCALL,
     PyDoc_STR("rename($self, span_id, name, /)\n--\n\nGive an open span a new name; False (nothing renamed) if it is not open.")},
    {"record_event", FAST(collector_record_event), METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("record_event($self, span_id, name, attributes=None, at_ns=None)\n--\n\nRecord a timestamped event on an open span; False if it is not open.")},
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

PyType_Spec collector_spec = {
    .name = "harn_async_trace._core._ccore.CoreCollector",
    .basicsize = sizeof(Collector),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = collector_slots,
};
