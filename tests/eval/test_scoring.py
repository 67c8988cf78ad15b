"""Scoring by each benchmark's rules, pinned on hand-made predictions (no model)."""

from __future__ import annotations

import pytest

from vidtt.errors import OptionsError
from vidtt.eval.choices import (
    Outcome,
    accuracy,
    by_group,
    extract_choice,
    group_outcomes,
    macro_accuracy,
)
from vidtt.eval.grounding import grounding_scores, iou
from vidtt.eval.intervals import bootstrap_ci, paired_difference_ci
from vidtt.eval.open_answers import contains_match, exact_match, normalize

OPTIONS = ["A. a dog", "B. a cat", "C. a red car", "D. the red car park"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A", "A"),
        ("b.", "B"),
        ("B)", "B"),
        ("c:", "C"),
        ("(C)", "C"),
        ("Answer: D", "D"),
        ("The best answer is C", "C"),
        ("Option B", "B"),
        ("The answer is (C) because the car is red.", "C"),
        ("C. a red car", "C"),
        ("a cat", "B"),
        ("The answer is a cat.", "B"),
        ("red car", "C"),
        ("It is the red car park.", "D"),
        ("I think C", "C"),
        ("A or B", None),
        ("A and B", None),
        ("A/B", None),
        ("", None),
        ("   ", None),
        ("E", None),
        ("(F)", None),
        ("A man opens the door", None),
        ("The man opens the door", None),
    ],
)
def test_strict_rule(text: str, expected: str | None) -> None:
    assert extract_choice(text, OPTIONS, rule="strict") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C", "C"),
        ("(C)", "C"),
        ("The best answer is D.", "D"),
        ("A or B", "A"),  # the first capital A-D wins
        ("b.", None),  # lowercase letters are not read
        ("a cat", None),  # nor option text
        ("E", None),
        ("", None),
        ("Answer: D", "A"),  # the "A" of "Answer": the prefix is not in its list
        ("Best answer: C", "B"),  # the list joins two prefixes, so "Best" is read
        ("The best option is C", "C"),
    ],
)
def test_videomme_rule_is_the_official_script(text: str, expected: str | None) -> None:
    assert extract_choice(text, OPTIONS) == expected
    assert extract_choice(text, OPTIONS, rule="videomme") == expected


def test_longvideobench_rule_removes_every_prefix_and_reads_e() -> None:
    five = [*OPTIONS, "E. a bus"]
    assert extract_choice("Best answer: C", five, rule="longvideobench") == "C"
    assert extract_choice("E", five, rule="longvideobench") == "E"
    assert extract_choice("E", OPTIONS, rule="longvideobench") is None
    assert extract_choice("no letter here", five, rule="longvideobench") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(B) a cat", "B"),
        ("b. a cat", "B"),
        ("B) a cat", "B"),
        ("(b", "B"),
        ("A or B", "A"),  # only the first word counts
        ("Answer: D", None),
        ("The answer is D", None),
        (" B", None),  # the first word is empty
        ("", None),
    ],
)
def test_mvbench_rule_reads_the_first_word(text: str, expected: str | None) -> None:
    assert extract_choice(text, OPTIONS, rule="mvbench") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B) a cat", "B"),
        ("(C) a red car", "C"),
        ("D", "D"),
        ("D.", None),  # no ")": the whole text must be the letter
        ("b)", None),  # compared case by case
        (")", None),
    ],
)
def test_mlvu_rule_reads_before_the_first_bracket(text: str, expected: str | None) -> None:
    assert extract_choice(text, OPTIONS, rule="mlvu") == expected


def test_letters_follow_the_number_of_options() -> None:
    assert extract_choice("C", ["yes", "no"], rule="strict") is None
    assert extract_choice("C", ["yes", "no"]) is None
    assert extract_choice("2", ["x", "y", "z"], letters="123", rule="strict") == "2"


def test_unknown_rule_is_one_clear_error() -> None:
    with pytest.raises(OptionsError, match="unknown answer rule 'egoschema'.*mvbench"):
        extract_choice("A", OPTIONS, rule="egoschema")


def test_accuracy_counts_no_answer_wrong_unless_skipped() -> None:
    outcomes = [True, False, None, True]
    assert accuracy(outcomes) == 0.5
    assert accuracy(outcomes, skip_unanswered=True) == pytest.approx(2 / 3)
    assert accuracy([]) == 0.0


def test_grouping_by_category_and_duration() -> None:
    records = [
        Outcome("1", True, {"category": "OCR", "duration": "short"}),
        Outcome("2", False, {"category": "OCR", "duration": "long"}),
        {"id": "3", "correct": True, "category": "Counting", "duration": "long"},
        {"id": "4", "correct": None, "groups": {"category": "Counting", "duration": "long"}},
        {"id": "5", "correct": True},
    ]
    assert by_group(records, "category") == {"(none)": 1.0, "Counting": 0.5, "OCR": 0.5}
    assert by_group(records, "duration") == {
        "(none)": 1.0,
        "long": pytest.approx(1 / 3),
        "short": 1.0,
    }
    assert by_group(records, "duration", skip_unanswered=True)["long"] == 0.5
    assert group_outcomes(records, "duration")["long"] == [False, True, None]
    assert macro_accuracy({"a": 1.0, "b": 0.5}) == 0.75


def test_iou() -> None:
    assert iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert iou((0, 10), (0, 10)) == 1.0
    assert iou((0, 5), (5, 10)) == 0.0  # touching, no overlap
    assert iou((0, 2), (8, 10)) == 0.0
    assert iou((10, 0), (5, 15)) == pytest.approx(5 / 15)  # reversed read backwards
    assert iou(None, (5, 15)) == 0.0
    assert iou((7, 7), (5, 15)) == 0.0  # empty span
    assert iou((7, 7), (7, 7)) == 1.0
    assert iou((float("nan"), 3), (0, 3)) == 0.0


def test_grounding_scores_first_span_by_default() -> None:
    pairs = [
        ([(0.0, 10.0)], (0.0, 10.0)),  # 1.0
        ([(0.0, 10.0), (20.0, 30.0)], (20.0, 30.0)),  # first span: 0.0
        ((0.0, 10.0), (0.0, 25.0)),  # one span: 0.4
        (None, (0.0, 5.0)),  # nothing read: 0.0
    ]
    scores = grounding_scores(pairs)
    assert scores == {
        "miou": pytest.approx(1.4 / 4),
        "r@0.3": 0.5,
        "r@0.5": 0.25,
        "r@0.7": 0.25,
        "count": 4,
    }
    assert grounding_scores(pairs, pick="best")["r@0.7"] == 0.5
    assert grounding_scores([])["miou"] == 0.0


def test_recall_counts_iou_equal_to_the_threshold() -> None:
    assert grounding_scores([((0.0, 5.0), (0.0, 10.0))])["r@0.5"] == 1.0


@pytest.mark.parametrize(
    ("text", "normal"),
    [("The Eiffel Tower!", "eiffel tower"), ("  a  cat,\tan owl ", "cat owl"), ("", "")],
)
def test_normalize(text: str, normal: str) -> None:
    assert normalize(text) == normal


def test_exact_and_contains_match() -> None:
    assert exact_match("The Eiffel tower.", ["eiffel tower", "paris"])
    assert not exact_match("the eiffel tower in paris", "eiffel tower")
    assert contains_match("It is the Eiffel Tower, in Paris.", ["eiffel tower"])
    assert not contains_match("a category", "cat")  # whole words only
    assert not contains_match("anything", ["", "the"])  # an empty reference matches nothing


def test_bootstrap_contains_the_mean_and_narrows_with_more_data() -> None:
    small = [1.0, 0.0, 1.0, 1.0, 0.0] * 4
    large = small * 25
    low, high = bootstrap_ci(small)
    assert low <= sum(small) / len(small) <= high
    big_low, big_high = bootstrap_ci(large)
    assert big_low <= 0.6 <= big_high
    assert big_high - big_low < (high - low) / 2


def test_bootstrap_is_deterministic_with_a_seed() -> None:
    values = [0.13, 0.92, 0.45, 0.71, 0.08, 0.66, 0.39, 0.97, 0.24]
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)
    assert bootstrap_ci([1.0] * 9) == (1.0, 1.0)


def test_bootstrap_level_widens_the_interval() -> None:
    values = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    low90, high90 = bootstrap_ci(values, level=0.9)
    low99, high99 = bootstrap_ci(values, level=0.99)
    assert low99 <= low90 and high90 <= high99


def test_paired_difference() -> None:
    a = [1.0] * 40 + [0.0] * 10
    b = [1.0] * 20 + [0.0] * 30
    low, high = paired_difference_ci(a, b)
    assert 0 < low <= 0.4 <= high
    same_low, same_high = paired_difference_ci(a, a)
    assert (same_low, same_high) == (0.0, 0.0)
    with pytest.raises(OptionsError, match="same questions"):
        paired_difference_ci(a, b[:-1])


def test_bootstrap_refuses_empty_or_bad_level() -> None:
    with pytest.raises(OptionsError, match="no values"):
        bootstrap_ci([])
    with pytest.raises(OptionsError, match="between 0 and 1"):
        bootstrap_ci([1.0], level=95)
