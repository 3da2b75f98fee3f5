/* span(kind, name, ...): the context manager (sync and async) and decorator. */
#include "_ccore.h"

/* ------------------------------------------------------------------------ */
/* Scope type (public name: span)                                           */

HT_INTERNAL Collector *
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

HT_INTERNAL int
scope_traverse(Scope *s, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(s));
    Py_VISIT(s->links);
    Py_VISIT(s->metadata);
    Py_VISIT(s->handle);
    Py_VISIT(s->more);
    return 0;
}

HT_INTERNAL int
scope_clear(Scope *s)
{
    Py_CLEAR(s->links);
    Py_CLEAR(s->metadata);
    Py_CLEAR(s->handle);
    Py_CLEAR(s->more);
    return 0;
}

HT_INTERNAL void
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

HT_INTERNAL PyObject *
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
HT_INTERNAL PyObject *
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

/* Through a replaced collector.open, called as the pure span() calls it. */
static PyObject *
scope_open_replaced(State *st, Scope *s, Collector *collector)
{
    PyObject *method = replaced(st, collector, M_OPEN);
    PyObject *span_id;
    if (s->plain) {
        PyObject *args[] = {s->kind, s->name};
        span_id = call_replaced(collector, method, args, 2, NULL);
    }
    else {
        PyObject *metadata = s->metadata != NULL ? Py_NewRef(s->metadata) : PyDict_New();
        PyObject *kwnames = Py_BuildValue("(sss)", "detached", "new_trace", "metadata");
        span_id = NULL;
        if (metadata != NULL && kwnames != NULL) {
            PyObject *args[] = {s->kind, s->name, s->links != NULL ? s->links : Py_None,
                                s->detached ? Py_True : Py_False,
                                s->new_trace ? Py_True : Py_False, metadata};
            span_id = call_replaced(collector, method, args, 3, kwnames);
        }
        Py_XDECREF(metadata);
        Py_XDECREF(kwnames);
    }
    if (span_id == NULL) {
        return NULL;
    }
    Handle *h = open_handle(collector, span_id);
    if (h == NULL && !PyErr_Occurred()) {
        PyErr_SetObject(PyExc_KeyError, span_id);
    }
    Py_DECREF(span_id);
    Py_XINCREF(h);
    return (PyObject *)h;
}

/* Open one span of this scope: its handle (the disabled one when off). */
HT_INTERNAL PyObject *
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
    else if (replaced(st, collector, M_OPEN) != NULL) {
        h = scope_open_replaced(st, s, collector);
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

HT_INTERNAL int
record_outcome(State *st, Collector *collector, PyObject *span_id, PyObject *exc)
{
    /* Written while the span is still open (then it is closed); through
     * collector.set_metadata, so an ended span is left alone. */
    if (exc == NULL || exc == Py_None
        || PyErr_GivenExceptionMatches(exc, PyExc_GeneratorExit)) {
        return 0;
    }
    int cancelled = PyObject_IsInstance(exc, st->CancelledError);
    if (cancelled < 0) {
        return -1;
    }
    if (cancelled) {
        return via_set_metadata(collector, span_id, st->s_cancelled, Py_True);
    }
    PyObject *type_name = PyType_GetName(Py_TYPE(exc));
    if (type_name == NULL) {
        return -1;
    }
    int status;
    if (PyUnicode_Compare(type_name, st->s_Cancelled) == 0) { /* trio/anyio's Cancelled */
        status = via_set_metadata(collector, span_id, st->s_cancelled, Py_True);
    }
    else {
        PyObject *message = PyObject_Str(exc);
        status = message == NULL ? -1
                                 : via_set_metadata(collector, span_id, st->s_error, message);
        if (status == 0) {
            status = via_set_metadata(collector, span_id, st->s_error_type, type_name);
        }
        Py_XDECREF(message);
    }
    Py_DECREF(type_name);
    return status;
}

/* End the span of `handle` (recording `exc` first); no-op when not live. */
HT_INTERNAL int
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
    int status = record_outcome(st, collector, h->span_id, exc);
    if (status == 0) {
        PyObject *method = replaced(st, collector, M_CLOSE);
        if (method != NULL) {
            PyObject *result = call_replaced(collector, method, &h->span_id, 1, NULL);
            status = result == NULL ? -1 : 0;
            Py_XDECREF(result);
        }
        else {
            status = core_close(collector, h->span_id, 0, NULL) < 0 ? -1 : 0;
        }
    }
    Py_DECREF(h);
    Py_DECREF(collector);
    return status;
}

HT_INTERNAL PyObject *
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
HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
scope_exit(Scope *s, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "__exit__() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    return scope_exit_impl(s, args[1]);
}

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
scope_open(Scope *s, PyObject *Py_UNUSED(ignored))
{
    return scope_open_handle(s);
}

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
scope_get_metadata(Scope *s, void *Py_UNUSED(closure))
{
    if (s->metadata == NULL) {
        return PyDict_New();
    }
    return PyDict_Copy(s->metadata);
}

HT_INTERNAL PyObject *
scope_get_bool(Scope *s, void *closure)
{
    return PyBool_FromLong(closure == NULL ? s->detached : s->new_trace);
}

HT_INTERNAL PyObject *
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

PyType_Spec scope_spec = {
    .name = "harn_async_trace.span",
    .basicsize = sizeof(Scope),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = scope_slots,
};
