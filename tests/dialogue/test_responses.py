"""Rendering responses: templating, conditions, channels and the seeded choice."""

from __future__ import annotations

import random

from trainkit.dialogue.responses import choose_variation, fill_template, render_response


def test_templates_fill_known_names_and_keep_escaped_braces():
    values = {"drink": "latte", "count": 2, "none": None}
    assert fill_template("{count} x {drink}, {none}", values) == "2 x latte, None"
    assert fill_template('/inform{{"size":"small"}}', values) == '/inform{"size":"small"}'
    assert fill_template("{{drink}} and {unknown}", values) == "{drink} and {unknown}"


def test_matching_conditional_variations_win_over_unconditional_ones():
    variations = [{"text": "plain"}, {"text": "vip", "condition": [{"type": "slot", "name": "vip", "value": True}]},
                  {"text": "for sms", "channel": "sms"}]
    rng = random.Random(0)
    assert choose_variation(variations, {"vip": True}, rng)["text"] == "vip"
    assert choose_variation(variations, {"vip": False}, rng)["text"] == "plain"
    assert {choose_variation(variations, {}, random.Random(s), "sms")["text"] for s in range(20)} == {"plain",
                                                                                                       "for sms"}
    assert choose_variation([variations[1]], {"vip": None}, rng) is None


def test_rendered_buttons_are_templated_and_selection_keys_dropped():
    responses = {"utter_size": [{"text": "Size of your {drink}?", "id": "x", "buttons": [
        {"title": "Small {drink}", "payload": '/inform{{"size": "small"}}'}]}]}
    message = render_response(responses, "utter_size", {"drink": "mocha"}, random.Random(0))
    assert message == {"text": "Size of your mocha?", "response": "utter_size", "buttons": [
        {"title": "Small mocha", "payload": '/inform{"size": "small"}'}]}
    assert render_response(responses, "utter_missing", {}, random.Random(0)) is None
