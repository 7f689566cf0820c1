"""The built-in verifiable-instruction task: constraint checks, sentence parsing, prompts, the rule judge."""

import json
import random
import re

import pytest

from cutalign.tasks import (
    BASE_INSTRUCTIONS,
    CONSTRAINT_TYPES,
    HELDOUT_INSTRUCTIONS,
    HELDOUT_SEED,
    INCOMPATIBLE,
    KINDS,
    SEEN_PHRASINGS,
    TRAIN_INSTRUCTIONS,
    AllCaps,
    AvoidWord,
    BulletPoints,
    EndsWith,
    IncludeKeyword,
    JsonOnly,
    LetterFrequency,
    Lowercase,
    MaxWords,
    MinWords,
    NoCommas,
    Paragraphs,
    Placeholders,
    Postscript,
    Quoted,
    Sections,
    StartsWith,
    Title,
    TwoAnswers,
    WordFrequency,
    compatible,
    parse_constraints,
    pass_rate,
    phrasing_split,
    rule_judge,
    task_prompts,
    wilson_interval,
)

ONE_OF_EACH = [
    Lowercase(), NoCommas(), IncludeKeyword("sunlight"), AvoidWord("rainbow"), MaxWords(30), BulletPoints(3),
    MinWords(60), AllCaps(), WordFrequency("sunlight", 2), LetterFrequency("k", 3), StartsWith("Good question"),
    EndsWith("Hope this helps"), Quoted(), JsonOnly(), Title(), Placeholders(2), Postscript(), Paragraphs(3),
    Sections(3, "Part"), TwoAnswers(),
]

ORIGINAL_SENTENCES = {
    "lowercase": "Answer in all lowercase letters.",
    "no_commas": "Do not use any commas in your answer.",
    "include_keyword": 'Include the word "sunlight" in your answer.',
    "avoid_word": 'Do not use the word "rainbow" anywhere in your answer.',
    "max_words": "Answer in at most 30 words.",
    "bullet_points": 'Answer with exactly 3 bullet points, each on its own line starting with "- ".',
}
"""The sentences of the six original kinds before phrasings existed: prompts saved then must still parse."""


def every_phrasing(constraint):
    """`constraint` in each of its kind's phrasings."""
    values = constraint.values()
    return [type(constraint)(**values, phrasing=i) for i in range(len(constraint.PHRASINGS))]


def test_one_example_per_kind_and_the_inventory():
    assert [c.kind for c in ONE_OF_EACH] == list(KINDS)
    assert [cls.kind for cls in CONSTRAINT_TYPES] == list(KINDS)
    assert len(KINDS) >= 12
    assert KINDS[:6] == ("lowercase", "no_commas", "include_keyword", "avoid_word", "max_words", "bullet_points")
    for cls in CONSTRAINT_TYPES:
        assert len(cls.PHRASINGS) >= 4, cls.kind
        assert SEEN_PHRASINGS < len(cls.PHRASINGS), cls.kind  # every kind keeps phrasings for held-out prompts


def test_original_kinds_keep_their_sentence_as_first_phrasing():
    for constraint in ONE_OF_EACH[:6]:
        assert constraint.phrasing == 0
        assert constraint.sentence() == ORIGINAL_SENTENCES[constraint.kind]
        assert parse_constraints("Describe rain. " + ORIGINAL_SENTENCES[constraint.kind]) == [constraint]


# --- lowercase ---------------------------------------------------------------------------------------------------


def test_lowercase_passes_lowercase_text_with_digits_and_punctuation():
    assert Lowercase().check("it costs 5 dollars, more or less!") is None


def test_lowercase_fails_and_quotes_the_capitalized_words():
    judgment = Lowercase().check("The capital of France is Paris.")
    assert judgment is not None
    assert "'The'" in judgment and "'France'" in judgment and "'Paris'" in judgment
    assert "lowercase" in judgment
    assert "'capital'" not in judgment


def test_lowercase_catches_a_lone_capital_i():
    judgment = Lowercase().check("i think I know the answer.")
    assert judgment is not None and "'I'" in judgment
    assert Lowercase().check("i think i know the answer.") is None


def test_lowercase_catches_a_capital_inside_a_word():
    assert "'iPhone'" in Lowercase().check("my iphone is an iPhone here.")


# --- no_commas ---------------------------------------------------------------------------------------------------


def test_no_commas_passes_without_commas():
    assert NoCommas().check("Rain falls. Then the sun comes out; a rainbow forms.") is None


def test_no_commas_fails_on_a_comma_glued_to_a_word():
    judgment = NoCommas().check("Paris, the capital of France is big.")
    assert judgment is not None
    assert "a comma" in judgment and "'Paris, the'" in judgment


def test_no_commas_counts_every_comma():
    judgment = NoCommas().check("Apples, pears, and plums , all grow on trees.")
    assert "3 commas" in judgment
    # each comma with the words around it, as written (a detached comma keeps its spaces)
    assert "'Apples, pears', 'pears, and', 'plums , all'" in judgment
    assert NoCommas().check(", starting with a comma") == (
        "The response uses a comma: ', starting'; the instruction asks for no commas."
    )


# --- include_keyword ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["Rainbows need sunlight.", "They need SUNLIGHT!", "It takes Sunlight, then rain.", "Two sunlights shine here."],
)
def test_include_keyword_matches_any_case_and_punctuation(text):
    assert IncludeKeyword("sunlight").check(text) is None


@pytest.mark.parametrize("text", ["Rainbows need light.", "The moonsunlight glows.", "It was sunlightly bright."])
def test_include_keyword_fails_without_the_whole_word(text):
    judgment = IncludeKeyword("sunlight").check(text)
    assert judgment is not None and "'sunlight'" in judgment


# --- avoid_word --------------------------------------------------------------------------------------------------


def test_avoid_word_passes_when_absent_even_inside_a_longer_word():
    assert AvoidWord("rainbow").check("Colors arc across the sky after rain.") is None
    assert AvoidWord("rainbow").check("A rainbowlike arc of colors appears.") is None


def test_avoid_word_fails_and_quotes_the_occurrences_as_written():
    judgment = AvoidWord("rainbow").check("A Rainbow forms. Rainbows need rain and sun.")
    assert judgment is not None
    assert "2 times" in judgment and "'Rainbow'" in judgment and "'Rainbows'" in judgment


def test_avoid_word_counts_hyphenated_compounds():
    judgment = AvoidWord("rainbow").check("A rainbow-colored arc appears.")
    assert judgment is not None and "'rainbow'" in judgment


def test_avoid_word_single_occurrence():
    judgment = AvoidWord("rainbow").check("The rainbow, bright and wide.")
    assert "once" in judgment and "'rainbow'" in judgment


# --- max_words ---------------------------------------------------------------------------------------------------


def test_max_words_exact_boundary():
    assert MaxWords(5).check("one two three four five") is None
    judgment = MaxWords(5).check("one two three four five six")
    assert judgment is not None
    assert "6 words" in judgment and "at most 5" in judgment and "'six'" in judgment


def test_max_words_does_not_count_bullet_markers_or_lone_punctuation():
    assert MaxWords(5).check("- one two\n- three four five\n...") is None


# --- bullet_points -----------------------------------------------------------------------------------------------


def test_bullet_points_accepts_dash_and_star_and_indentation():
    text = "Here is my list:\n- apples are red\n* bananas are yellow\n  - grapes are green"
    assert BulletPoints(3).check(text) is None


def test_bullet_points_too_many_quotes_the_extra_ones():
    judgment = BulletPoints(2).check("- apples are red\n* bananas are yellow\n- grapes are green")
    assert "3 bullet points" in judgment and "exactly 2" in judgment and "'- grapes are green'" in judgment


def test_bullet_points_too_few():
    judgment = BulletPoints(3).check("- apples are red\n-bananas are yellow")
    assert "only 1 bullet point: '- apples are red'" in judgment and "exactly 3" in judgment


def test_bullet_points_none_quotes_the_start_of_the_response():
    judgment = BulletPoints(2).check("Apples are red and bananas are yellow.")
    assert "no bullet points" in judgment and "'Apples are red and bananas are ...'" in judgment


# --- constructor validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["two words", 'quo"te', "", "x,"])
def test_word_constraints_reject_non_words(word):
    with pytest.raises(ValueError, match=r"include_keyword\.word must be a single word"):
        IncludeKeyword(word)


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_count_constraints_reject_non_positive_integers(n):
    with pytest.raises(ValueError, match=r"max_words\.n must be a positive integer"):
        MaxWords(n)


# --- sentence <-> parse ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("constraint", ONE_OF_EACH, ids=lambda c: c.kind)
def test_sentence_parse_round_trip_for_every_phrasing(constraint):
    for phrased in every_phrasing(constraint):
        assert parse_constraints(phrased.sentence()) == [phrased], phrased
        prompt = "Describe how a rainbow forms. " + phrased.sentence()
        assert parse_constraints(prompt) == [phrased]
        assert parse_constraints(json.loads(json.dumps(prompt))) == [phrased]
        assert parse_constraints(prompt)[0].phrasing == phrased.phrasing


def test_every_sentence_is_distinct_and_ends_a_sentence():
    sentences = [phrased.sentence() for c in ONE_OF_EACH for phrased in every_phrasing(c)]
    assert len(set(sentences)) == len(sentences)
    assert all(s.endswith(".") and s[0].isupper() for s in sentences)


def test_parse_recovers_random_combinations_with_their_phrasings():
    rng = random.Random(0)
    for _ in range(300):
        picked = rng.sample(ONE_OF_EACH, rng.randint(1, 4))
        constraints = [rng.choice(every_phrasing(c)) for c in picked]
        prompt = "Explain tides. " + " ".join(c.sentence() for c in constraints)
        assert parse_constraints(prompt) == constraints, prompt


def test_parse_keeps_order_of_appearance_and_numbers():
    constraints = [BulletPoints(4), AvoidWord("well-known"), MaxWords(120), Lowercase()]
    prompt = "Explain tides. " + " ".join(c.sentence() for c in constraints)
    assert parse_constraints(prompt) == constraints


def test_parse_finds_sentences_inside_a_chat_template():
    prompt = "<|im_start|>user\nExplain tides. Do not use any commas in your answer.<|im_end|>\n"
    assert parse_constraints(prompt) == [NoCommas()]


def test_no_base_instruction_parses_as_a_constraint():
    assert [b.text for b in BASE_INSTRUCTIONS if parse_constraints(b.text)] == []


# --- empty and near-empty responses ------------------------------------------------------------------------------


@pytest.mark.parametrize("response", ["", "   \n\t", "- -\n...", "Ok", "i agree.", "- yes\n- no"])
def test_empty_or_near_empty_responses_fail_every_constraint(response):
    for constraint in ONE_OF_EACH:
        assert constraint.check(response) is not None, constraint.kind
    prompt = "Describe rain. " + " ".join(c.sentence() for c in ONE_OF_EACH)
    judgment = rule_judge(prompt, response)
    assert "empty" in judgment or "too short" in judgment
    assert rule_judge("Describe rain.", response) == judgment


def test_empty_judgment_wording():
    assert "empty" in rule_judge("Describe rain.", "  ")
    judgment = rule_judge("Describe rain.", "rain falls")
    assert "too short" in judgment and "'rain falls'" in judgment


def test_three_words_is_enough_for_the_emptiness_rule():
    assert rule_judge("Describe rain. Answer in all lowercase letters.", "rain falls down") is None


def test_instruction_without_constraints_passes_any_real_answer():
    assert rule_judge("Describe rain.", "Rain, Rain, Rain falls from CLOUDS.") is None


# --- rule_judge -------------------------------------------------------------------------------------------------------


def test_rule_judge_names_every_violated_constraint_and_only_those():
    prompt = "Explain how a rainbow forms. " + " ".join(
        c.sentence() for c in [Lowercase(), NoCommas(), IncludeKeyword("sunlight"), MaxWords(30)]
    )
    response = "A rainbow forms when light, bent by raindrops, splits into colors."
    judgment = rule_judge(prompt, response)
    assert "'A'" in judgment and "lowercase" in judgment
    assert "2 commas" in judgment and "'light, bent'" in judgment
    assert "'sunlight'" in judgment
    assert "at most 30" not in judgment
    assert rule_judge(prompt, "a rainbow forms when sunlight splits into colors.") is None


def test_rule_judge_works_from_text_that_went_through_json():
    prompts = task_prompts("heldout", n=24, seed=3)
    responses = ["The Sun, the Rain and a rainbow.", "- one thing\n- another thing", "plain lowercase words only"] * 8
    restored = json.loads(json.dumps({"prompts": prompts}))["prompts"]
    assert [rule_judge(p, r) for p, r in zip(restored, responses)] == [
        rule_judge(p, r) for p, r in zip(prompts, responses)
    ]


def test_rule_judge_rejects_non_string_response():
    with pytest.raises(TypeError, match="response must be a string, got NoneType"):
        rule_judge("Describe rain.", None)





# --- base instructions and split ---------------------------------------------------------------------------------


def _whole_word(word, text):
    return re.search(rf"\b{re.escape(word)}(s|es)?\b", text, re.IGNORECASE) is not None


def test_base_instructions_are_many_distinct_and_have_fitting_words():
    assert len(BASE_INSTRUCTIONS) >= 240
    texts = [b.text for b in BASE_INSTRUCTIONS]
    assert len(set(texts)) == len(texts)
    for b in BASE_INSTRUCTIONS:
        assert b.text.endswith(".") and len(b.text.split()) <= 12, b.text
        assert b.keyword == b.keyword.lower() and b.avoid == b.avoid.lower(), b
        assert not _whole_word(b.keyword, b.text), b  # including the keyword must be a choice
        assert _whole_word(b.avoid, b.text), b  # the avoided word is one the instruction itself uses
        IncludeKeyword(b.keyword)  # raises unless a valid single word
        AvoidWord(b.avoid)


def test_split_is_disjoint_complete_and_follows_the_documented_shuffle():
    assert set(TRAIN_INSTRUCTIONS).isdisjoint(HELDOUT_INSTRUCTIONS)
    assert len(TRAIN_INSTRUCTIONS) + len(HELDOUT_INSTRUCTIONS) == len(BASE_INSTRUCTIONS)
    order = list(range(len(BASE_INSTRUCTIONS)))
    random.Random(HELDOUT_SEED).shuffle(order)
    expected = [BASE_INSTRUCTIONS[i] for i in sorted(order[: len(order) // 4])]
    assert list(HELDOUT_INSTRUCTIONS) == expected


def test_prompts_come_from_their_split_only():
    train_texts = {b.text for b in TRAIN_INSTRUCTIONS}
    heldout_texts = {b.text for b in HELDOUT_INSTRUCTIONS}
    for prompt in task_prompts("train", seed=5):
        assert any(prompt.startswith(t + " ") for t in train_texts)
        assert not any(prompt.startswith(t + " ") for t in heldout_texts)
    for prompt in task_prompts("heldout", seed=5):
        assert any(prompt.startswith(t + " ") for t in heldout_texts)


# --- task_prompts ------------------------------------------------------------------------------------------------


def test_task_prompts_are_deterministic_under_seed():
    assert task_prompts("train", n=40, seed=7) == task_prompts("train", n=40, seed=7)
    assert task_prompts("train", n=40, seed=7) != task_prompts("train", n=40, seed=8)


def test_task_prompts_default_is_one_per_base_instruction():
    prompts = task_prompts("heldout")
    assert len(prompts) == len(HELDOUT_INSTRUCTIONS)
    bases = sorted(next(b.text for b in HELDOUT_INSTRUCTIONS if p.startswith(b.text + " ")) for p in prompts)
    assert bases == sorted(b.text for b in HELDOUT_INSTRUCTIONS)


def test_task_prompts_cycle_when_n_exceeds_the_split():
    n = len(HELDOUT_INSTRUCTIONS) * 2 + 3
    prompts = task_prompts("heldout", n=n)
    assert len(prompts) == n
    assert all(len(parse_constraints(p)) == 1 for p in prompts)


def test_task_prompts_restricted_kinds():
    prompts = task_prompts("train", n=30, kinds=("no_commas",))
    assert all([c.values() for c in parse_constraints(p)] == [{}] for p in prompts)
    assert all([type(c) for c in parse_constraints(p)] == [NoCommas] for p in prompts)
    for prompt in task_prompts("train", n=30, kinds=("include_keyword", "avoid_word", "word_frequency")):
        (constraint,) = parse_constraints(prompt)
        base = next(b for b in TRAIN_INSTRUCTIONS if prompt.startswith(b.text + " "))
        expected = base.avoid if constraint.kind == "avoid_word" else base.keyword
        assert constraint.word == expected


def test_task_prompts_balance_kinds_and_carry_distinct_kinds():
    prompts = task_prompts("train", n=100, constraints_per_prompt=2, seed=2)
    counts = dict.fromkeys(KINDS, 0)
    pairs = set()
    for prompt in prompts:
        kinds = [c.kind for c in parse_constraints(prompt)]
        assert len(kinds) == 2 and kinds[0] != kinds[1]
        pairs.add(frozenset(kinds))
        for kind in kinds:
            counts[kind] += 1
    assert sum(counts.values()) == 200
    assert max(counts.values()) - min(counts.values()) <= 1
    assert len(pairs) > 5  # combinations vary, not a fixed pairing


def test_task_prompts_bad_arguments():
    with pytest.raises(ValueError, match="split must be 'train' or 'heldout', got 'test'"):
        task_prompts("test")
    with pytest.raises(ValueError, match="kinds must be distinct names"):
        task_prompts("train", kinds=("commas",))
    with pytest.raises(ValueError, match="constraints_per_prompt must be between 1 and the number of kinds \\(2\\)"):
        task_prompts("train", kinds=("lowercase", "no_commas"), constraints_per_prompt=3)


# --- pass_rate and wilson_interval -------------------------------------------------------------------------------


def test_pass_rate_against_a_naive_count():
    rng = random.Random(0)
    prompts = task_prompts("train", n=120, kinds=("lowercase", "no_commas", "max_words"), constraints_per_prompt=2)
    pool = [
        "the sky is blue because of light",
        "The sky is blue because of light",
        "the sky, the sea and the light are blue",
        "blue sky",
        "",
        "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty twentyone twentytwo",
    ]
    responses = [rng.choice(pool) for _ in prompts]

    def naive_ok(prompt, response):
        """Each kind's rule written out directly, for the responses of the pool above (plain words only)."""
        n_words = len(response.split())
        ok = {}
        for constraint in parse_constraints(prompt):
            if constraint.kind == "lowercase":
                ok["lowercase"] = n_words >= 3 and response == response.lower()
            elif constraint.kind == "no_commas":
                ok["no_commas"] = n_words >= 3 and "," not in response
            else:
                ok["max_words"] = 3 <= n_words <= constraint.n
        return ok

    per_kind = {}
    overall = 0
    for prompt, response in zip(prompts, responses):
        ok = naive_ok(prompt, response)
        overall += all(ok.values())
        for kind, passed in ok.items():
            per_kind.setdefault(kind, []).append(passed)

    report = pass_rate(prompts, responses)
    assert report["n"] == 120
    assert report["pass_rate"] == pytest.approx(overall / 120)
    assert set(report["per_kind"]) == set(per_kind)
    for kind, outcomes in per_kind.items():
        assert report["per_kind"][kind]["n"] == len(outcomes)
        assert report["per_kind"][kind]["pass_rate"] == pytest.approx(sum(outcomes) / len(outcomes))
    assert 0 < report["pass_rate"] < 1  # the pool mixes passes and failures


def test_pass_rate_small_hand_counted_case():
    prompts = [
        "Describe rain. Answer in all lowercase letters.",
        "Describe snow. Answer in all lowercase letters. Do not use any commas in your answer.",
        "Describe fog.",
        "Describe hail. Do not use any commas in your answer.",
    ]
    responses = ["rain falls from clouds", "snow is cold, and white", "", "Hail is ice falling"]
    # lowercase: pass, pass -> 2/2; no_commas: fail (comma), pass -> 1/2; overall: 1, 0, 0 (empty), 1 -> 2/4.
    assert pass_rate(prompts, responses) == {
        "pass_rate": 0.5,
        "n": 4,
        "per_kind": {"lowercase": {"pass_rate": 1.0, "n": 2}, "no_commas": {"pass_rate": 0.5, "n": 2}},
        "per_phrasing": {"seen": {"pass_rate": 2 / 3, "n": 3}},
    }


def test_pass_rate_bad_input():
    with pytest.raises(ValueError, match="got 2 instructions and 1 responses"):
        pass_rate(["a", "b"], ["x y z"])
    with pytest.raises(ValueError, match="at least one response"):
        pass_rate([], [])


def test_wilson_interval_against_the_formula_by_hand():
    # 7 successes of 20, z = 1.96: p = 0.35, z^2 = 3.8416
    # center = (p + z^2 / 2n) / (1 + z^2 / n) = (0.35 + 0.09604) / 1.19208 = 0.374170
    # half = z * sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n) = 1.96 * sqrt(0.011375 + 0.0024010) / 1.19208
    #      = 1.96 * 0.117371 / 1.19208 = 0.192981
    low, high = wilson_interval(7, 20)
    assert low == pytest.approx(0.374170 - 0.192981, abs=1e-5)
    assert high == pytest.approx(0.374170 + 0.192981, abs=1e-5)


def test_wilson_interval_edges_and_errors():
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and 0.25 < high < 0.35  # z^2 / (n + z^2) = 3.8416 / 13.8416 = 0.2775
    assert high == pytest.approx(3.8416 / 13.8416)
    assert wilson_interval(10, 10)[1] == 1.0
    with pytest.raises(ValueError, match="n must be at least 1, got 0"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match=r"successes must be between 0 and n \(5\), got 6"):
        wilson_interval(6, 5)
