/* Clock bindings, finished rows, building Span records, span events. */
#include "_ccore.h"

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */


HT_INTERNAL int
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
HT_INTERNAL int
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

HT_INTERNAL PyObject *
new_id_or_none(int has, int64_t value)
{
    if (!has) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong(value);
}


/* kind as a SpanKind member (new reference), else TypeError. */
HT_INTERNAL PyObject *
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
HT_INTERNAL PyObject *
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
HT_INTERNAL int
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

HT_INTERNAL int
truth(PyObject *value, int missing)
{
    return value == NULL ? missing : PyObject_IsTrue(value);
}

/* ------------------------------------------------------------------------ */
/* clock bindings                                                           */

HT_INTERNAL void
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
HT_INTERNAL Py_ssize_t
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


/* ------------------------------------------------------------------------ */
/* building Span records                                                    */

HT_INTERNAL int
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


/* A model.Span from a finished span's fields (references are borrowed). */
HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
span_of_handle(Collector *self, Handle *h)
{
    return build_span(self->state, h->id, h->has_parent, h->parent_id, h->kind, h->name,
                      h->start_ns, h->duration_ns, h->lane, h->trace_id,
                      self->bindings[h->binding].object, h->metadata, h->links, h->events);
}

/* The ClockBinding objects, by index: rows name theirs by index. */
HT_INTERNAL PyObject *
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

HT_INTERNAL int
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
HT_INTERNAL PyObject *
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

HT_INTERNAL void
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
HT_INTERNAL PyObject *
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

HT_INTERNAL int
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

HT_INTERNAL int
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
