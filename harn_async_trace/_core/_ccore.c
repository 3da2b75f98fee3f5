/* The compiled tracing core: module, configuration and the hot functions of
 * the module API (see _ccore.h for the rules every file keeps). */
#include "_ccore.h"

/* ------------------------------------------------------------------------ */
/* module functions: the hot path of the module API                         */

HT_INTERNAL PyObject *
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
    PyObject *result, *method;
    if (!collector->enabled) {
        result = st->zero;
        Py_INCREF(result);
    }
    else if ((method = replaced(st, collector, M_OPEN)) != NULL) {
        result = call_replaced(collector, method, args, 2, NULL);
    }
    else {
        result = id_of(core_open(collector, args[0], args[1], NULL, 0, 1, 0, NULL));
    }
    Py_DECREF(collector);
    return result;
}


HT_INTERNAL PyObject *
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
    int status = via_set_metadata(collector, args[0], args[1], args[2]);
    Py_DECREF(collector);
    if (status < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

HT_INTERNAL PyObject *
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
    PyObject *method = replaced(collector->state, collector, M_END);
    PyObject *result = method != NULL ? call_replaced(collector, method, &span_id, 1, NULL)
                                      : collector_end(collector, span_id);
    Py_DECREF(collector);
    return result;
}

HT_INTERNAL PyObject *
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
    PyObject *method = replaced(collector->state, collector, M_CLOSE);
    if (method != NULL) {
        PyObject *result = call_replaced(collector, method, &span_id, 1, NULL);
        Py_DECREF(collector);
        return result;
    }
    int status = core_close(collector, span_id, 0, NULL);
    Py_DECREF(collector);
    if (status < 0) {
        return NULL;
    }
    return PyBool_FromLong(status);
}

HT_INTERNAL PyObject *
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

HT_INTERNAL int
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

HT_INTERNAL PyObject *
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
    PyObject *root_parent = PyDict_GetItemString(dict, "_root_parent"); /* borrowed */
    if (root_parent == NULL || !PyList_CheckExact(root_parent)
        || PyList_GET_SIZE(root_parent) != 1) {
        PyErr_SetString(PyExc_TypeError, "events._root_parent must be a one-item list");
        return NULL;
    }
    Py_INCREF(root_parent);
    Py_XSETREF(st->root_parent, root_parent);
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

HT_INTERNAL PyObject *
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
     PyDoc_STR("span_attach_metadata(span_id, key, value, /)\n--\n\nSet metadata on an open span; an ended span is left alone.")},
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

HT_INTERNAL PyObject *
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

HT_INTERNAL int
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
    static const char *const method_names[METHOD_COUNT] = {
        "open", "close", "end", "set_metadata", "record_event",
    };
    for (int i = 0; i < METHOD_COUNT; i++) {
        st->method_names[i] = PyUnicode_InternFromString(method_names[i]);
        if (st->method_names[i] == NULL) {
            return -1;
        }
        st->methods[i] = PyDict_GetItemWithError(st->CollectorType->tp_dict,
                                                 st->method_names[i]);
        if (st->methods[i] == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_SystemError, "CoreCollector has no %s", method_names[i]);
            }
            return -1;
        }
        Py_INCREF(st->methods[i]);
    }
    /* No Py_tp_vectorcall slot before 3.12: set the constructor directly. */
    st->ScopeType->tp_vectorcall = scope_vectorcall;
    st->disabled = handle_alloc(st);
    if (st->disabled == NULL) {
        return -1;
    }
    ((Handle *)st->disabled)->span_id = PyLong_FromLong(0);
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

HT_INTERNAL int
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
    Py_VISIT(st->root_parent);
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
    for (int i = 0; i < METHOD_COUNT; i++) {
        Py_VISIT(st->methods[i]);
    }
    return 0;
}

HT_INTERNAL int
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
    Py_CLEAR(st->root_parent);
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
    for (int i = 0; i < METHOD_COUNT; i++) {
        Py_CLEAR(st->method_names[i]);
        Py_CLEAR(st->methods[i]);
    }
    st->configured = 0;
    return 0;
}

HT_INTERNAL void
ccore_free(void *module)
{
    ccore_clear((PyObject *)module);
}

static PyModuleDef_Slot ccore_module_slots[] = {
    {Py_mod_exec, ccore_exec},
    {0, NULL},
};

struct PyModuleDef ccore_module = {
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
