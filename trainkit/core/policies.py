"""Imports every dialogue component so that each registers itself with the engine."""

from __future__ import annotations

from trainkit.core.ensemble import PolicyEnsemble, combine_predictions
from trainkit.core.memoization import AugmentedMemoizationPolicy, MemoizationPolicy
from trainkit.core.policy import Policy, PolicyPrediction
from trainkit.core.rule_policy import RulePolicy
from trainkit.core.ted import TEDPolicy
from trainkit.core.trackers import TrackerProvider
from trainkit.core.unexpected_intent import UnexpecTEDIntentPolicy

__all__ = [
    "AugmentedMemoizationPolicy",
    "MemoizationPolicy",
    "Policy",
    "PolicyEnsemble",
    "PolicyPrediction",
    "RulePolicy",
    "TEDPolicy",
    "TrackerProvider",
    "UnexpecTEDIntentPolicy",
    "combine_predictions",
]
