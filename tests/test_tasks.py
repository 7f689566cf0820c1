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


# --- every kind on a good and a bad response ---------------------------------------------------------------------

# (constraint, a response that follows it, a response that breaks it, what the judgment must say or quote)
GOOD_AND_BAD = [
    (Lowercase(), "the sky is blue today.", "The sky is Blue today.", ["'The'", "'Blue'"]),
    (NoCommas(), "rain falls from the clouds.", "First, the rain falls, and then it stops.",
     ["2 commas", "'First, the'", "'falls, and'"]),
    (IncludeKeyword("sunlight"), "Sunlight splits into colors.", "Light splits into colors.", ["'sunlight'"]),
    (AvoidWord("rainbow"), "Light bends in the drops.", "A rainbow is light in rain.", ["'rainbow'", "once"]),
    (MaxWords(5), "one two three four five", "one two three four five six", ["6 words", "'six'"]),
    (BulletPoints(2), "- apples are red\n- pears are green", "- apples are red", ["'- apples are red'"]),
    (MinWords(10), "one two three four five six seven eight nine ten", "only four words here.",
     ["only 4 words", "'only four words here.'"]),
    (AllCaps(), "THE SKY IS BLUE.", "THE SKY is BLUE.", ["lowercase letters", "'is'"]),
    (WordFrequency("sun", 2), "The sun rises and the sun sets.", "The sun rises in the east.",
     ["only once", "'sun'", "at least 2 times"]),
    (LetterFrequency("k", 3), "Kites keep kids happy.", "Kites fly high today.", ["only once", "'Kites'"]),
    (StartsWith("Good question"), "Good question! The sky is blue.", "The sky is blue. Good question.",
     ["starts with 'The sky is blue. ...'", "'Good question'"]),
    (EndsWith("Hope this helps"), "The sky is blue. Hope this helps!", "Hope this helps. The sky is blue.",
     ["ends with '... helps. The sky is blue.'", "'Hope this helps'"]),
    (Quoted(), '"The sky is blue."', 'The sky is blue."', ["no opening double quote", "'The sky is ...'"]),
    (JsonOnly(), '{"answer": "the sky is blue"}', 'Here it is: {"answer": "the sky is blue"}',
     ["not valid JSON", "'Here it is: {\"answer\": \"the ...'"]),
    (Title(), "<<Why the Sky Is Blue>>\nAir scatters blue light.", "Why the Sky Is Blue\nAir scatters blue light.",
     ["no title", "'Why the Sky Is Blue Air ...'"]),
    (Placeholders(2), "Dear [name], meet me at [place] today.", "Dear [name], meet me at noon today.",
     ["only 1 placeholder", "'[name]'"]),
    (Postscript(), "The sky is blue.\nP.S. Sunsets are red.", "The sky is blue because of air.",
     ["no postscript", "'... sky is blue because of air.'"]),
    (Paragraphs(2), "Rain falls.\n***\nSnow falls too.", "Rain falls.\n***\nSnow falls.\n***\nHail falls down.",
     ["3 paragraphs", "'Hail falls down.'"]),
    (Sections(2, "Part"), "Part 1\nRain falls.\nPart 2\nSnow falls.", "Part 1\nRain and snow both fall.",
     ["1 section header", "'Part 1'"]),
    (TwoAnswers(), "Rain is water.\n******\nRain falls from clouds.", "Rain is water.\n******\nrain is  Water.",
     ["same answer twice", "'Rain is water.'"]),
]


def test_good_and_bad_cases_cover_every_kind():
    assert [c.kind for c, *_ in GOOD_AND_BAD] == list(KINDS)


@pytest.mark.parametrize(("constraint", "good", "bad", "evidence"), GOOD_AND_BAD,
                         ids=[c.kind for c, *_ in GOOD_AND_BAD])
def test_every_kind_passes_the_good_and_quotes_the_evidence_against_the_bad(constraint, good, bad, evidence):
    assert constraint.check(good) is None
    judgment = constraint.check(bad)
    assert judgment is not None
    for expected in evidence:
        assert expected in judgment, (expected, judgment)
    violation = constraint.violation(bad)
    assert judgment == violation.plain()
    prompt = "Describe the sky. " + constraint.sentence()
    assert rule_judge(prompt, good) is None
    styled = rule_judge(prompt, bad)
    assert violation.found in styled and violation.asked in styled  # whatever the style, the evidence is there


def test_lowercase_and_all_caps_are_case_blind_where_they_combine():
    assert StartsWith("Good question").check("GOOD QUESTION, THE SKY IS BLUE.") is None
    assert EndsWith("Hope this helps").check("the sky is blue. hope this helps.") is None
    assert Postscript().check("the sky is blue.\np.s. so is the sea.") is None
    assert Sections(2, "Part").check("## PART 1\nRAIN.\n**PART 2**\nSNOW FALLS.") is None
    assert WordFrequency("sun", 2).check("THE SUN AND THE SUN.") is None
    assert LetterFrequency("k", 2).check("KITES AND KIDS.") is None


def test_starts_and_ends_with_need_whole_words():
    assert StartsWith("In short").check("In shortened form the sky is blue.") is not None
    assert EndsWith("That is all").check("The sky is blue. That is all.") is None
    assert EndsWith("That is all").check("The sky is blue and that is allowed.") is not None


def test_json_only_accepts_a_code_fence_and_reports_where_it_breaks():
    assert JsonOnly().check('```json\n{"answer": "the sky is blue"}\n```') is None
    judgment = JsonOnly().check('{"answer": "the sky is blue"} Hope this helps!')
    assert "extra data at 'Hope this helps!'" in judgment


def test_postscript_needs_an_answer_before_and_a_note_after():
    assert "no answer before it" in Postscript().check("P.S. the sky is blue.")
    assert "bare 'P.S.'" in Postscript().check("The sky is blue. P.S.")
    assert Postscript().check("The sky is blue. P.S. So is the sea.") is None


def test_quoted_accepts_curly_quotes_and_names_the_missing_side():
    assert Quoted().check("“The sky is blue.”") is None
    assert "no closing double quote: it ends with '... sky is blue.'" in Quoted().check('"The sky is blue.')
    assert "with no double quotes around it" in Quoted().check("The sky is blue.")


def test_paragraphs_and_two_answers_use_their_own_markers():
    assert "no line of only '***'" in Paragraphs(2).check("Rain falls.\n******\nSnow falls too.")
    assert "no line of only '******'" in TwoAnswers().check("Rain falls.\n***\nSnow falls too.")
    assert "3 answers" in TwoAnswers().check("Rain falls.\n******\nSnow falls.\n******\nHail falls.")


# --- constructor validation of the new fields --------------------------------------------------------------------


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Lowercase(phrasing=5), r"lowercase\.phrasing must be an integer from 0 to 4"),
    (lambda: NoCommas(phrasing=-1), r"no_commas\.phrasing must be an integer from 0 to 4"),
    (lambda: StartsWith('say "hi"'), r"starts_with\.phrase must be a phrase"),
    (lambda: EndsWith(" padded"), r"ends_with\.phrase must be a phrase"),
    (lambda: LetterFrequency("K", 3), r"letter_frequency\.letter must be a single lowercase letter"),
    (lambda: Sections(3, "part"), r"sections\.header must be a capitalized word"),
    (lambda: Paragraphs(0), r"paragraphs\.n must be a positive integer"),
])
def test_new_fields_are_validated(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --- compatibility -----------------------------------------------------------------------------------------------


def test_incompatible_pairs_name_known_kinds():
    assert INCOMPATIBLE and all(len(pair) == 2 and pair <= set(KINDS) for pair in INCOMPATIBLE)
    assert not compatible(("lowercase", "all_caps"))
    assert not compatible(("json_only", "bullet_points"))
    assert not compatible(("no_commas", "no_commas"))
    assert compatible(("lowercase", "no_commas", "bullet_points"))


@pytest.mark.parametrize("per_prompt", [2, 3])
def test_incompatible_pairs_are_never_drawn(per_prompt):
    for seed in range(4):
        for split, phrasings in (("train", "seen"), ("heldout", "all")):
            for prompt in task_prompts(split, n=150, seed=seed, constraints_per_prompt=per_prompt, phrasings=phrasings):
                kinds = [c.kind for c in parse_constraints(prompt)]
                assert len(kinds) == per_prompt and compatible(kinds), prompt


def test_every_compatible_pair_is_drawn_sometimes():
    drawn = set()
    for seed in range(6):
        for prompt in task_prompts("train", n=400, seed=seed, constraints_per_prompt=2):
            drawn.add(frozenset(c.kind for c in parse_constraints(prompt)))
    pairs = {frozenset((a, b)) for i, a in enumerate(KINDS) for b in KINDS[i + 1:]}
    assert drawn == pairs - INCOMPATIBLE


def test_kinds_that_cannot_share_a_prompt_are_refused():
    with pytest.raises(ValueError, match="no 2 of the kinds lowercase, all_caps can share a prompt"):
        task_prompts("train", kinds=("lowercase", "all_caps"), constraints_per_prompt=2)
    assert len(task_prompts("train", n=5, kinds=("lowercase", "all_caps", "no_commas"), constraints_per_prompt=2)) == 5


# --- phrasing split ----------------------------------------------------------------------------------------------


def _phrasings(prompts):
    return [c.phrasing for p in prompts for c in parse_constraints(p)]


def test_training_prompts_use_seen_phrasings_only_and_all_of_them():
    prompts = task_prompts("train", n=600, seed=1, constraints_per_prompt=2)
    assert set(_phrasings(prompts)) == set(range(SEEN_PHRASINGS))
    assert {phrasing_split(parse_constraints(p)) for p in prompts} == {"seen"}
    assert set(_phrasings(task_prompts("heldout", n=200, seed=1))) == set(range(SEEN_PHRASINGS))  # the default


def test_unseen_phrasings_never_appear_in_training_prompts():
    train_sentences = set()
    for seed in range(3):
        for prompt in task_prompts("train", n=500, seed=seed, constraints_per_prompt=3):
            train_sentences.update(c.sentence() for c in parse_constraints(prompt))
    unseen = task_prompts("heldout", n=300, seed=0, constraints_per_prompt=2, phrasings="unseen")
    assert min(_phrasings(unseen)) >= SEEN_PHRASINGS
    assert {phrasing_split(parse_constraints(p)) for p in unseen} == {"unseen"}
    unseen_templates = {cls.PHRASINGS[i] for cls in CONSTRAINT_TYPES for i in range(SEEN_PHRASINGS, len(cls.PHRASINGS))}
    seen_templates = {cls.PHRASINGS[i] for cls in CONSTRAINT_TYPES for i in range(SEEN_PHRASINGS)}
    assert unseen_templates.isdisjoint(seen_templates)
    assert not any(c.sentence() in train_sentences for p in unseen for c in parse_constraints(p))


def test_all_phrasings_mixes_whole_prompts_of_each_split():
    prompts = task_prompts("heldout", n=200, seed=2, constraints_per_prompt=3, phrasings="all")
    splits = [phrasing_split(parse_constraints(p)) for p in prompts]
    assert 60 < splits.count("unseen") < 140
    for prompt in prompts:
        seen = {c.seen for c in parse_constraints(prompt)}
        assert len(seen) == 1  # a prompt is wholly seen or wholly unseen


def test_phrasing_arguments_are_checked():
    with pytest.raises(ValueError, match="training prompts use the seen phrasings only"):
        task_prompts("train", phrasings="unseen")
    with pytest.raises(ValueError, match="phrasings must be one of seen, unseen, all, got 'new'"):
        task_prompts("heldout", phrasings="new")


@pytest.mark.parametrize("phrasings", ["seen", "unseen", "all"])
def test_heldout_prompts_are_deterministic_under_seed(phrasings):
    def make(seed):
        return task_prompts("heldout", n=60, seed=seed, constraints_per_prompt=2, phrasings=phrasings)

    assert make(4) == make(4)
    assert make(4) != make(5)


def test_pass_rate_reports_seen_and_unseen_phrasings_apart():
    prompts = [
        "Describe rain. " + NoCommas(phrasing=0).sentence(),
        "Describe snow. " + NoCommas(phrasing=4).sentence(),
        "Describe fog. " + NoCommas(phrasing=3).sentence() + " " + Lowercase(phrasing=1).sentence(),
        "Describe hail. " + Lowercase(phrasing=2).sentence(),
        "Describe wind.",
    ]
    responses = ["rain falls, softly", "snow is cold and white", "fog is grey and thick", "Hail is ice",
                 "the wind blows"]
    report = pass_rate(prompts, responses)
    assert report["pass_rate"] == 3 / 5
    assert report["per_phrasing"] == {"seen": {"pass_rate": 0.0, "n": 2}, "unseen": {"pass_rate": 1.0, "n": 2}}
    assert report["per_kind"] == {"lowercase": {"pass_rate": 0.5, "n": 2}, "no_commas": {"pass_rate": 2 / 3, "n": 3}}


# --- judgment styles ---------------------------------------------------------------------------------------------


def test_judgments_vary_in_style_but_always_name_every_violation():
    constraints = [NoCommas(), IncludeKeyword("sunlight"), MaxWords(8)]
    prompt = "Explain how a rainbow forms. " + " ".join(c.sentence() for c in constraints)
    openings = set()
    for i in range(60):
        response = f"Light, bent by drop number {i}, splits into many bright colors here."
        judgment = rule_judge(prompt, response)
        assert judgment == rule_judge(prompt, response)  # seeded by the pair
        for constraint in constraints:
            violation = constraint.violation(response)
            assert violation.found in judgment and violation.asked in judgment
        assert "\n" not in judgment
        openings.add(" ".join(judgment.split()[:2]))
    assert len(openings) >= 5


def test_a_single_violation_has_several_wordings():
    prompt = "Describe rain. " + NoCommas().sentence()
    judgments = {rule_judge(prompt, f"Rain, number {i}, falls from the clouds.") for i in range(40)}
    frames = {re.sub(r"'[^']*'|\d+", "_", j) for j in judgments}
    assert len(frames) >= 4
