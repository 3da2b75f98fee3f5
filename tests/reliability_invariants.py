"""Invariants a finished trace must satisfy, checked against the interpreter's ground truth.

:func:`check` returns a list of human-readable violations (empty = all good):

* ids are unique, every parent id exists, in the same trace;
* each span's parent is the one the interpreter expected from the program
  structure (so no span is parented to a sibling task's span), and its links
  point at exactly the spans the program handed work from;
* every link points to a real span, in the trace the link names;
* trace ids: a ``new_trace`` span starts a trace of its own, a span work was
  handed to (detached, linked) is in the trace of the span that handed it
  off, any other root is in the collector's trace, children in their parent's;
* children start no earlier than their parent and end no later than it
  (every parent edge in this library is an awaited structure: work handed to
  another task gets a detached root, not a parent);
* how each span ended (ok / error / cancelled) is what the program saw;
* 0 spans left open, nothing dropped, every span the program opened is there.
"""

from __future__ import annotations

from reliability_interpreter import Expect, Key, Run

from harn_async_trace import Span


def _ended(span: Span) -> int:
    return span.start_ns + span.duration_ns


def _outcome(span: Span) -> str:
    if span.metadata.get("cancelled"):
        return "cancelled"
    if "error_type" in span.metadata:
        return "error"
    return "ok"


def canonical_keys(spans: list[Span], run: Run) -> dict[int, Key | None]:
    """The interpreter's key for each span id (None for drain decisions, which repeat)."""
    keys: dict[int, Key | None] = {}
    emit_key: dict[int, str] = {}  # emit span id -> emit name
    by_channel: dict[str, list[Span]] = {}
    for span in sorted(spans, key=lambda s: s.span_id):
        if span.kind == "channel_emit":
            by_channel.setdefault(span.name, []).append(span)
    for channel, emits in by_channel.items():
        names = run.truth.channel_emits.get(channel, [])
        for span, emit_name in zip(emits, names, strict=False):
            emit_key[span.span_id] = emit_name
            keys[span.span_id] = ("channel_emit", f"{channel}/{emit_name}")
    for span in spans:
        if span.kind == "channel_emit":
            keys.setdefault(span.span_id, ("channel_emit", f"{span.name}/?{span.span_id}"))
        elif span.kind == "channel_match":
            first = emit_key.get(int(span.links[0].span_id)) if span.links else None
            keys[span.span_id] = ("channel_match", f"{span.name}@{first}")
        elif span.kind == "drain_decision":
            keys[span.span_id] = None
        else:
            keys[span.span_id] = (str(span.kind), span.name)
    return keys


def check(run: Run) -> list[str]:
    """Every violated invariant of ``run``'s trace, as text (empty when the trace is right)."""
    collector = run.collector
    spans = collector.spans()
    problems: list[str] = []
    by_id = {s.span_id: s for s in spans}
    if len(by_id) != len(spans):
        problems.append(f"duplicate span ids: {len(spans) - len(by_id)}")
    if collector.open_span_count():
        problems.append(f"{collector.open_span_count()} spans left open")
    if collector.dropped_spans:
        problems.append(f"{collector.dropped_spans} spans dropped")
    keys = canonical_keys(spans, run)
    by_key: dict[Key, Span] = {}
    for span in spans:
        key = keys[span.span_id]
        if key is not None:
            if key in by_key:
                first = by_key[key].span_id
                problems.append(f"two spans with key {key}: #{first}, #{span.span_id}")
            by_key[key] = span

    for span in spans:
        where = f"#{span.span_id} {span.kind} {span.name}"
        # -- self-consistency -------------------------------------------------
        parent = by_id.get(span.parent_id) if span.parent_id is not None else None
        if span.parent_id is not None:
            if parent is None:
                problems.append(f"{where}: parent #{span.parent_id} does not exist")
            else:
                if parent.trace_id != span.trace_id:
                    problems.append(f"{where}: parent #{parent.span_id} is in another trace")
                if span.start_ns < parent.start_ns:
                    problems.append(f"{where}: starts before its parent #{parent.span_id}")
                if _ended(span) > _ended(parent):
                    problems.append(f"{where}: ends after its parent #{parent.span_id}")
        for link in span.links:
            target = by_id.get(int(link.span_id)) if link.span_id.isdigit() else None
            if target is None or link.trace_id != target.trace_id:
                problems.append(f"{where}: link to a span that does not exist: {link}")
        # -- ground truth -----------------------------------------------------
        key = keys[span.span_id]
        if key is None:  # drain decision: a child of its drain span
            if parent is None or parent.kind != "drain":
                problems.append(f"{where}: drain decision not under a drain span")
            continue
        expect = run.truth.spans.get(key)
        if expect is None:
            if span.kind == "channel_match" and span.parent_id is None and span.links:
                continue  # a handler cancelled before it ran: nothing to compare
            problems.append(f"{where}: the program never opened it (key {key})")
            continue
        problems.extend(_trace_problems(span, expect, by_id, collector.trace_id, where))
        want_parent = by_key.get(expect.parent) if expect.parent is not None else None
        if expect.parent is not None and want_parent is None:
            problems.append(f"{where}: expected parent {expect.parent} is missing")
        elif (want_parent.span_id if want_parent else None) != span.parent_id:
            got = f"#{span.parent_id} {parent.name if parent else ''}"
            problems.append(f"{where}: parent is {got}, expected {expect.parent}")
        want_links = {by_key[k].span_id for k in expect.links if k in by_key}
        if len(want_links) != len(expect.links):
            problems.append(f"{where}: a span it should link to is missing: {expect.links}")
        got_links = {int(link.span_id) for link in span.links if link.span_id.isdigit()}
        if got_links != want_links:
            problems.append(f"{where}: links to {sorted(got_links)}, expected {sorted(want_links)}")
        if expect.outcome is not None and _outcome(span) != expect.outcome:
            problems.append(f"{where}: recorded {_outcome(span)}, program saw {expect.outcome}")

    for key, expect in run.truth.spans.items():
        if expect.required and key not in by_key:
            problems.append(f"lost span: the program opened {key}, the trace does not have it")
    fresh = [by_key[k].trace_id for k, e in run.truth.spans.items() if e.new_trace and k in by_key]
    if len(set(fresh)) != len(fresh):
        problems.append("two new_trace spans share a trace id")
    return problems


def _trace_problems(
    span: Span, expect: Expect, by_id: dict[int, Span], default: str, where: str
) -> list[str]:
    """Whether a root span is in the trace the program implies (children: see the parent check)."""
    if span.parent_id is not None:
        return []
    if expect.new_trace:
        if span.trace_id == default:
            return [f"{where}: new_trace span kept the collector's trace id"]
        return []
    if span.links:
        target = by_id.get(int(span.links[0].span_id)) if span.links[0].span_id.isdigit() else None
        if target is not None and span.trace_id != target.trace_id:
            return [f"{where}: handed-off work is not in the trace of #{target.span_id}"]
        return []
    if span.trace_id != default:
        return [f"{where}: a root in trace {span.trace_id}, expected the collector's"]
    return []
