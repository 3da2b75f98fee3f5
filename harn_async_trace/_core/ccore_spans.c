/* Opening, ending and editing spans: the core interface's hot path. */
#include "_ccore.h"

/* ------------------------------------------------------------------------ */
/* opening                                                                  */

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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
    PyObject_GC_Track(h); /* its fields may come to hold cycles (metadata values) */
    return (PyObject *)h;
}

/* A root's trace id and links as the root-parent hook (events._root_parent)
 * says: 0 with *trace_out and *links_out set (new references) or left NULL when
 * the hook answers None; -1 on error. May run any Python code. */
static int
foreign_root(Collector *self, PyObject *hook, PyObject **trace_out, PyObject **links_out)
{
    State *st = self->state;
    Py_INCREF(hook);
    PyObject *found = PyObject_CallOneArg(hook, (PyObject *)self);
    Py_DECREF(hook);
    if (found == NULL) {
        return -1;
    }
    if (found == Py_None) {
        Py_DECREF(found);
        return 0;
    }
    int ok = PyTuple_CheckExact(found) && PyTuple_GET_SIZE(found) == 2
             && PyUnicode_CheckExact(PyTuple_GET_ITEM(found, 0));
    PyObject *link = ok ? PyTuple_GET_ITEM(found, 1) : NULL;
    if (ok && link != Py_None && Py_TYPE(link) != (PyTypeObject *)st->SpanLink) {
        ok = PyObject_IsInstance(link, st->SpanLink);
        if (ok < 0) {
            Py_DECREF(found);
            return -1;
        }
    }
    if (!ok) {
        PyErr_Format(PyExc_TypeError,
                     "the root-parent hook must return None or (trace_id: str, link: SpanLink | "
                     "None), got %R", found);
        Py_DECREF(found);
        return -1;
    }
    if (link != Py_None) {
        *links_out = PyList_New(1);
        if (*links_out == NULL) {
            Py_DECREF(found);
            return -1;
        }
        PyList_SET_ITEM(*links_out, 0, Py_NewRef(link));
    }
    *trace_out = Py_NewRef(PyTuple_GET_ITEM(found, 0));
    Py_DECREF(found);
    return 0;
}

/* The hook in events._root_parent (borrowed), or None. */
static inline PyObject *
root_parent_hook(State *st)
{
    PyObject *cell = st->root_parent;
    return cell != NULL && PyList_GET_SIZE(cell) == 1 ? PyList_GET_ITEM(cell, 0) : Py_None;
}

/* Open a span; returns its handle (new reference). */
HT_INTERNAL Handle *
core_open(Collector *self, PyObject *kind_arg, PyObject *name_arg, PyObject *links_arg,
          int detached, int push, int new_trace, PyObject *metadata_arg)
{
    State *st = self->state;
    Handle *h = NULL, *top = NULL;
    PyObject *clock = NULL, *trace = NULL;
    PyObject *hook_links = NULL; /* the root-parent hook's [link], in place of links_arg */
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
    /* The chain before the id: a root asks the root-parent hook first, and
     * the hook may restart the ids (as continue_trace does). */
    PyObject *top_obj;
    if (PyContextVar_Get(self->chain, NULL, &top_obj) < 0) {
        goto fail;
    }
    top = top_obj == Py_None ? NULL : (Handle *)top_obj;
    while (top != NULL && top->collector == NULL) {
        top = top->prev;
    }
    Py_XINCREF(top);
    Py_XDECREF(top_obj);
    if (top == NULL && !new_trace) {
        /* Only a root without links or new_trace looks for the hook: one
         * read of the list's item, and nothing for any other span. */
        if (root_parent_hook(st) != Py_None) {
            int has_links = links_arg != NULL && links_arg != Py_None;
            if (has_links && (has_links = PyObject_IsTrue(links_arg)) < 0) {
                goto fail;
            }
            /* Read again: the truth test may have run Python (and swapped it). */
            PyObject *hook = root_parent_hook(st); /* borrowed; foreign_root holds it */
            if (!has_links && hook != Py_None) {
                if (foreign_root(self, hook, &trace, &hook_links) < 0) {
                    goto fail;
                }
                if (hook_links != NULL) {
                    links_arg = hook_links;
                }
            }
        }
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
            Py_XDECREF(hook_links);
            Py_DECREF(h);
            return NULL;
        }
    }
    Py_XDECREF(hook_links);
    return h;
fail:
    Py_XDECREF(kind);
    Py_XDECREF(name);
    Py_XDECREF(clock);
    Py_XDECREF(trace);
    Py_XDECREF(hook_links);
    Py_XDECREF(top);
    Py_XDECREF(h);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* ending                                                                   */

/* End the open span `h` (already taken out of the open table).
 * With `record` non-NULL, *record receives its Span (new reference). */
HT_INTERNAL int
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
HT_INTERNAL int
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


/* ------------------------------------------------------------------------ */
/* open-span edits                                                          */

HT_INTERNAL int
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

HT_INTERNAL int
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


HT_INTERNAL int
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

/* `at_ns` (record_event's) as an int64 into *out: 1 when given, 0 when
 * NULL/None, -1 (TypeError/ValueError naming it) when invalid. */
static int
read_at_ns(PyObject *at_ns, int64_t *out)
{
    if (at_ns == NULL || at_ns == Py_None) {
        return 0;
    }
    if (!PyLong_Check(at_ns) || PyBool_Check(at_ns)) {
        PyErr_Format(PyExc_TypeError,
                     "at_ns must be an int (ns since the Unix epoch) or None, got %R", at_ns);
        return -1;
    }
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(at_ns, &overflow);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow > 0) {
        PyErr_Format(PyExc_ValueError, "at_ns must be < 2**63, got %R", at_ns);
        return -1;
    }
    if (overflow < 0 || value < 0) {
        PyErr_Format(PyExc_ValueError, "at_ns must be >= 0, got %R", at_ns);
        return -1;
    }
    *out = (int64_t)value;
    return 1;
}

/* Returns 1 (recorded or dropped by the limit) or -1; the span is open.
 * `at_ns` (NULL or None: now) is the event's time in ns since the Unix epoch. */
HT_INTERNAL int
handle_record_event_impl(Handle *h, PyObject *name, PyObject *attributes, PyObject *at_ns)
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
    int64_t at = 0;
    int given = read_at_ns(at_ns, &at);
    if (given < 0) {
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
    int status;
    int64_t offset, wall_offset = self->bindings[h->binding].wall_offset_ns;
    if (given) {
        /* A given time needs no clock read (and so no call into Python). */
        offset = at - wall_offset - h->start_ns;
    }
    else {
        Py_INCREF(self);
        uint64_t generation = self->generation;
        int64_t now;
        int read = binding_now(self, h->binding, &now);
        if (read < 0 || self->generation != generation || h->collector == NULL) {
            Py_DECREF(self);
            return read < 0 ? -1 : 1;
        }
        offset = now - h->start_ns;
        wall_offset = self->bindings[h->binding].wall_offset_ns;
        Py_DECREF(self);
    }
    PyObject *attrs = (attributes != NULL && attributes != Py_None
                       && PyDict_GET_SIZE(attributes) > 0)
                          ? PyDict_Copy(attributes)
                          : PyDict_New();
    PyObject *time_ms = PyLong_FromLongLong(
        floor_div(given ? at : h->start_ns + offset + wall_offset, 1000000));
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

HT_INTERNAL PyObject *
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
/* replaced methods                                                         */

/* Call `method` (found on type(c)) bound to `c`, with args. */
HT_INTERNAL PyObject *
call_replaced(Collector *c, PyObject *method, PyObject *const *args, Py_ssize_t nargs,
              PyObject *kwnames)
{
    Py_INCREF(method);
    descrgetfunc get = Py_TYPE(method)->tp_descr_get;
    PyObject *bound = get == NULL ? Py_NewRef(method)
                                  : get(method, (PyObject *)c, (PyObject *)Py_TYPE(c));
    Py_DECREF(method);
    if (bound == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_Vectorcall(bound, args, nargs, kwnames);
    Py_DECREF(bound);
    return result;
}

/* c.set_metadata(span_id, key, value), through a replacement if there is one. */
HT_INTERNAL int
via_set_metadata(Collector *c, PyObject *span_id, PyObject *key, PyObject *value)
{
    PyObject *method = replaced(c->state, c, M_SET_METADATA);
    if (method == NULL) {
        return core_set_metadata(c, span_id, key, value);
    }
    PyObject *args[] = {span_id, key, value};
    PyObject *result = call_replaced(c, method, args, 3, NULL);
    Py_XDECREF(result);
    return result == NULL ? -1 : 0;
}
