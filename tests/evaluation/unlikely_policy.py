"""A dialogue policy for the tests that predicts `action_unlikely_intent` as Rasa's
UnexpecTEDIntentPolicy does: after a user turn it finds unlikely (here: an intent named
in `unlikely_intents`), once, with a priority above the memoizing policies."""

from __future__ import annotations

from trainkit.core.policy import Policy, PolicyPrediction
from trainkit.data.domain import Domain
from trainkit.data.events import ActionExecuted, Event, UserUttered
from trainkit.engine.component import register

UNLIKELY = "action_unlikely_intent"


@register
class UnlikelyIntentProbe(Policy):
    """Flags the intents it is told to, right after the user said them."""

    name = "UnlikelyIntentProbe"
    priority = 5
    reads_unlikely_intent = True
    defaults = {"unlikely_intents": ["surprise"], "priority": 5}

    def train(self, inputs, out) -> None:
        out.json("probe.json", {"unlikely_intents": self.config["unlikely_intents"]})

    def predict_action_probabilities(self, events: list[Event], domain: Domain) -> PolicyPrediction:
        last = events[-1] if events else None
        if isinstance(last, UserUttered) and last.intent in self.config["unlikely_intents"]:
            return self.prediction(domain, {UNLIKELY: 1.0})
        if isinstance(last, ActionExecuted) and last.action_name == UNLIKELY:
            return self.prediction(domain)
        return self.prediction(domain)
