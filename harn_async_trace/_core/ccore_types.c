/* SpanHandle (an open span), ChainBinding (collector.bind) and Ready (an
 * awaitable that is done at once, for `async with span()`). */
#include "_ccore.h"

/* ------------------------------------------------------------------------ */
/* Handle type (public name: SpanHandle)                                    */

HT_INTERNAL int
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

HT_INTERNAL int
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

HT_INTERNAL void
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

HT_INTERNAL PyObject *
handle_set_metadata(Handle *h, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "set_metadata() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    Collector *collector = h->collector;
    if (collector != NULL) {
        Py_INCREF(h);
        Py_INCREF(collector);
        int status = replaced(collector->state, collector, M_SET_METADATA) != NULL
                         ? via_set_metadata(collector, h->span_id, args[0], args[1])
                         : handle_set_metadata_impl(h, args[0], args[1], 0);
        Py_DECREF(collector);
        Py_DECREF(h);
        if (status < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}


HT_INTERNAL PyObject *
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
    PyObject *method = replaced(st, h->collector, M_RECORD_EVENT);
    if (method != NULL) {
        PyObject *call_args[] = {h->span_id, name, attrs != NULL ? attrs : Py_None};
        PyObject *result = call_replaced(h->collector, method, call_args, 3, NULL);
        Py_XDECREF(attrs);
        return result;
    }
    Py_INCREF(h);
    int status = handle_record_event_impl(h, name, attrs, NULL);
    Py_DECREF(h);
    Py_XDECREF(attrs);
    if (status < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

HT_INTERNAL PyObject *
handle_link(Handle *h, PyObject *Py_UNUSED(ignored))
{
    if (h->collector == NULL) {
        Py_RETURN_NONE;
    }
    return link_of(handle_state((PyObject *)h), h->trace_id, h->span_id);
}

HT_INTERNAL PyObject *
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
    /* As in the pure core: its collector while open, else None. */
    {"_collector", T_OBJECT, offsetof(Handle, collector), READONLY, NULL},
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

PyType_Spec handle_spec = {
    .name = "harn_async_trace.SpanHandle",
    .basicsize = sizeof(Handle),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION
             | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = handle_slots,
};

/* ------------------------------------------------------------------------ */
/* ChainBinding type                                                        */

HT_INTERNAL int
chain_binding_traverse(ChainBinding *b, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(b));
    Py_VISIT(b->chain);
    Py_VISIT(b->node);
    Py_VISIT(b->token);
    return 0;
}

HT_INTERNAL int
chain_binding_clear(ChainBinding *b)
{
    Py_CLEAR(b->chain);
    Py_CLEAR(b->node);
    Py_CLEAR(b->token);
    return 0;
}

HT_INTERNAL void
chain_binding_dealloc(ChainBinding *b)
{
    PyTypeObject *tp = Py_TYPE(b);
    PyObject_GC_UnTrack(b);
    chain_binding_clear(b);
    PyObject_GC_Del(b);
    Py_DECREF(tp);
}

HT_INTERNAL PyObject *
chain_binding_enter(ChainBinding *b, PyObject *Py_UNUSED(ignored))
{
    PyObject *token = PyContextVar_Set(b->chain, b->node);
    if (token == NULL) {
        return NULL;
    }
    Py_XSETREF(b->token, token);
    Py_RETURN_NONE;
}

HT_INTERNAL PyObject *
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

PyType_Spec chain_binding_spec = {
    .name = "harn_async_trace._core._ccore.ChainBinding",
    .basicsize = sizeof(ChainBinding),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION
             | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = chain_binding_slots,
};

/* ------------------------------------------------------------------------ */
/* Ready type                                                               */

HT_INTERNAL void
ready_dealloc(Ready *r)
{
    PyTypeObject *tp = Py_TYPE(r);
    Py_CLEAR(r->value);
    PyObject_Free(r);
    Py_DECREF(tp);
}

HT_INTERNAL PyObject *
ready_await(PyObject *self)
{
    Py_INCREF(self);
    return self;
}

HT_INTERNAL PySendResult
ready_send(Ready *r, PyObject *Py_UNUSED(arg), PyObject **result)
{
    Py_INCREF(r->value);
    *result = r->value;
    return PYGEN_RETURN;
}

HT_INTERNAL PyObject *
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

HT_INTERNAL PyObject *
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

PyType_Spec ready_spec = {
    .name = "harn_async_trace._core._ccore.Ready",
    .basicsize = sizeof(Ready),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = ready_slots,
};
