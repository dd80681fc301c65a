"""Property-based: whatever a list of events holds, reading it gives trainkit events or an
`EventFormatError`, and a tracker can be built from what it gives; never another exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trainkit.core.rasa_events import EventFormatError, events_from_json
from trainkit.core.tracker import DialogueStateTracker
from trainkit.data.domain import Domain, Slot

DOMAIN = Domain(intents=["greet"], slots=[Slot("city", "text")])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=10))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=12)
KINDS = ["user", "action", "slot", "bot", "active_loop", "form", "restart", "session_started", "rewind", "undo",
         "reset_slots", "entities", "action_execution_rejected", "loop_interrupted", "followup", "nonsense"]
KEYS = ["name", "action_name", "key", "value", "text", "intent", "entities", "parse_data", "action_text",
        "is_interrupted", "bare", "full_retrieval_intent"]
events = st.one_of(
    values,
    st.fixed_dictionaries({"event": st.sampled_from(KINDS)}, optional={key: values for key in KEYS}),
    st.fixed_dictionaries({"event": st.just("user"), "parse_data": st.fixed_dictionaries(
        {}, optional={"intent": values, "entities": st.lists(values, max_size=3), "text": values})}),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=6))
def test_any_event_list_reads_or_fails_with_an_event_format_error(items):
    try:
        read = events_from_json(items, DOMAIN)
    except EventFormatError as exc:
        assert str(exc).startswith(("event ", "events must"))
        return
    DialogueStateTracker(DOMAIN, read).past_states()
