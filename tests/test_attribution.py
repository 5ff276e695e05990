"""The answer check (app.attribution) with the real MiniLM embedder.

Every test that produces quotes asserts that each one is a verbatim substring of its
resource's text, so a reader can always find it on the page.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.attribution import (
    CLOSEST_LEAD,
    MAY_HELP_LEAD,
    NOT_FOUND,
    Attribution,
    Refusal,
    attribute,
    check_answer,
    may_help,
    not_found,
    numbers,
    split_sentences,
    subject_terms,
    units,
)


@dataclass(frozen=True)
class Res:
    text: str
    source: str
    page: int | None = None
    similarity: float | None = None
    context: str = ""  # title > heading, as Hit.context


# Verbatim from the sample handbook (data/make_samples.py), as PDF text: wrapped lines.
EXPENSES = Res(
    "Submitting a claim\n"
    "Expense claims are submitted in the expenses module of PeopleDesk within 30 days of\n"
    "the date on which the expense occurred. Late claims are only accepted with the\n"
    "approval of the department head, and claims older than 90 days are rejected. For\n"
    "every single item above EUR 25 a receipt must be attached, either as a scan or a\n"
    "clear photo; for smaller amounts a short description of the purpose is sufficient.",
    "employee_handbook.pdf",
    5,
    0.62,
)
MEALS = Res(
    "Meal allowance and mileage\n"
    "On business trips within Germany you receive a daily meal allowance of EUR 44 for\n"
    "every full day away from home. On the day of arrival and the day of departure the\n"
    "allowance is EUR 16. If your manager approves the use of your private car for a\n"
    "business trip, you receive EUR 0.30 per kilometre driven.",
    "employee_handbook.pdf",
    5,
    0.55,
)
LEAVE = Res(
    "Rest matters. Full-time employees receive 25 days of paid annual leave per calendar "
    "year. Leave of more than 15 consecutive working days must be approved by the "
    "department head. It must be requested at least 8 weeks in advance.",
    "leave_policy.md",
    None,
    0.58,
)
# A benefits page whose numbers a model borrowed for other claims (the real failures).
BENEFITS = Res(
    "Health plan\n"
    "In-network specialist visits have a copayment of around $50 per visit. In-network "
    "services are covered at 80% after the deductible; you pay 20% coinsurance.\n"
    "Out-of-network claims must be filed within 180 days of the date of service.",
    "benefits_summary.pdf",
    2,
    0.41,
)


def assert_verbatim(result: Attribution | Refusal, resources) -> None:
    """Every quote in the result is an exact substring of the resource it names."""
    if isinstance(result, Attribution):
        for c in result.citations:
            for q in c.quotes:
                assert q in resources[c.n - 1].text, (q, c.n)
        for s in result.sentences:
            if s.quote is not None:
                assert s.quote in resources[s.n - 1].text, (s.quote, s.n)
        passages = result.closest
    else:
        passages = result.passages
    for p in passages:
        assert p.quote in resources[p.n - 1].text, (p.quote, p.n)


# --- the tests the issue asks for ---------------------------------------------------------


def test_right_sentence_matched_to_its_passage(embedder):
    resources = [EXPENSES, MEALS]
    result = attribute("Expense claims must be submitted within 30 days [1].", resources, embedder)
    assert_verbatim(result, resources)
    (s,) = result.sentences
    assert (s.n, s.checked) == (1, "kept")
    assert s.quote.startswith("Expense claims are submitted")
    assert "30 days" in s.quote
    assert [c.n for c in result.citations] == [1]
    assert result.citations[0].checked == "kept"
    assert result.unsupported == ()
    assert result.text == "Expense claims must be submitted within 30 days [1]."


def test_wrong_marker_is_moved(embedder):
    resources = [EXPENSES, MEALS]
    answer = "For a full day on a business trip in Germany the meal allowance is EUR 44 [1]."
    result = attribute(answer, resources, embedder)
    assert_verbatim(result, resources)
    (s,) = result.sentences
    assert (s.cited, s.n, s.checked) == ((1,), 2, "moved")
    assert "EUR 44" in s.quote
    assert result.text.endswith("EUR 44 [2].")
    assert [(c.n, c.checked) for c in result.citations] == [(2, "moved")]


def test_missing_marker_is_added(embedder):
    resources = [EXPENSES, MEALS]
    result = attribute("Claims older than 90 days are rejected.", resources, embedder)
    assert_verbatim(result, resources)
    assert (result.sentences[0].n, result.sentences[0].checked) == (1, "added")
    assert result.text == "Claims older than 90 days are rejected [1]."


def test_invented_number_is_unsupported(embedder):
    resources = [EXPENSES, MEALS]
    answer = "Claims older than 120 days are rejected [1]."
    result = attribute(answer, resources, embedder)
    assert_verbatim(result, resources)
    (s,) = result.sentences
    assert s.n is None and s.checked == "dropped"
    assert "120" in s.reason
    assert result.unsupported == ("Claims older than 120 days are rejected.",)
    assert result.citations == ()
    assert result.text == "Claims older than 120 days are rejected."  # the wrong [1] is gone


@pytest.mark.parametrize(
    "claim",
    [
        "The notice period is 180 days [1].",  # 180 days is a claims-filing deadline
        "The mileage rate is 20% [1].",  # 20% is the in-network coinsurance
        "You receive a referral bonus of around $50 [1].",  # $50 is a copayment
        "Employees get a referral bonus of $50 for every hire [1].",
        "When you use your own car, the company reimburses 20% of the mileage.",
    ],
)
def test_number_about_something_else_is_unsupported(embedder, claim):
    resources = [BENEFITS, LEAVE]
    result = attribute(claim, resources, embedder)
    assert_verbatim(result, resources)
    (s,) = result.sentences
    assert s.n is None, (s.quote, s.score)
    assert result.unsupported == (s.text,)
    assert result.citations == ()


@pytest.mark.parametrize(
    ("claim", "n", "needle"),
    [
        ("You get 25 days of paid leave per year.", 1, "25 days of paid annual leave"),
        ("Full-timers are entitled to twenty-five days of paid vacation.", 1, "25 days"),
        ("You can spend EUR 44 a day on meals when travelling for work.", 2, "EUR 44"),
        ("If you drive your own car on a business trip, you get EUR 0.30 per km.", 2, "0.30"),
        ("A receipt is required for anything that costs more than EUR 25.", 3, "EUR 25"),
    ],
)
def test_paraphrase_is_matched(embedder, claim, n, needle):
    resources = [LEAVE, MEALS, EXPENSES]
    result = attribute(claim, resources, embedder)
    assert_verbatim(result, resources)
    (s,) = result.sentences
    assert s.n == n, (s.reason, s.score)
    assert needle in s.quote


def test_a_compound_word_is_found_by_its_last_part(embedder):
    # "telework" is the memo's "work from home"; the numbers still have to match exactly
    memo = Res(
        "What changes - **Remote days:** From **1 October 2026**, employees whose role allows "
        "it may work from home on **up to 3 days per week** instead of the previous 2 days.",
        "memo_2026-09_remote_work.md",
    )
    claim = "You are allowed to telework in a week up to 3 days per week."
    (s,) = attribute(claim, [memo], embedder).sentences
    assert s.n == 1 and "up to 3 days per week" in s.quote, (s.reason, s.score)
    (s,) = attribute(claim.replace("3", "4"), [memo], embedder).sentences
    assert s.n is None and "numbers" in s.reason


# Verbatim from the sample travel memo (data/samples/memo_2026-10_travel_rates.txt).
HOTELS = Res(
    "Hotel prices have risen sharply over the last two years, and many of you have told the "
    "travel desk that it is hard to find a decent room within our limits. From 1 November "
    "2026 the following rates apply to all business trips booked from that date.\n\nHotels\n"
    "The hotel cap is EUR 170 per night, including breakfast, in Germany and Austria. In "
    "high-cost cities, namely Munich, Zurich, London and Paris, the cap is EUR 220 per night. "
    "During trade fairs the travel desk may still approve higher rates.",
    "memo_2026-10_travel_rates.txt",
)


@pytest.mark.parametrize(
    ("claim", "supported"),
    [
        # the embedded model's answer on the dev set (q25): 170 is the cap in Germany
        (
            "Based on the information provided in the resources, the hotel limit per night "
            "in London is EUR 170 [1].",
            False,
        ),
        ("The hotel cap per night in London is EUR 170.", False),
        ("The hotel limit per night in London is EUR 220.", True),
        ("The hotel cap in Germany is EUR 170 per night.", True),
        ("The hotel cap per night in Munich is EUR 220.", True),  # "hotel": the heading's
    ],
)
def test_a_value_is_not_moved_to_the_neighbouring_sentence_subject(embedder, claim, supported):
    (s,) = attribute(claim, [HOTELS], embedder).sentences
    assert (s.n == 1) is supported, (s.reason, s.score, s.quote)


# Verbatim from the sample office-move memo and security-training memo
GARAGE = Res(
    "Parking and bicycles The new building has an underground garage with 40 parking spaces "
    "for Larkspur employees. Spaces are rented monthly for EUR 35 and are booked through "
    "PeopleDesk. The garage also has 8 charging points for electric cars.",
    "memo_2026-06_office_move.txt",
)
TRAINING = Res(
    "Deadline The training is mandatory for everyone and must be completed by 18 September "
    "2026. It takes about 55 minutes and can be paused and resumed at any time.",
    "memo_2026-08_security_training.txt",
)


@pytest.mark.parametrize(
    ("claim", "resource", "supported"),
    [
        # a price beside a count: "parking" and "garage" are in the count's sentence, but
        # a count of spaces is not a price (the model's pressed answer on dev q55)
        ("The parking space in the new office garage costs EUR 35 per month.", GARAGE, True),
        ("The parking garage has 35 charging points.", GARAGE, False),  # 8 of them
        # "It takes ...": the sentence before holds its subject, whatever its date
        ("The mandatory training takes about 55 minutes.", TRAINING, True),
    ],
)
def test_a_value_of_another_kind_or_a_pronouns_antecedent_is_not_borrowed(
    embedder, claim, resource, supported
):
    (s,) = attribute(claim, [resource], embedder).sentences
    assert (s.n == 1) is supported, (s.reason, s.score, s.quote)


TITLED = Res(
    TRAINING.text,
    TRAINING.source,
    context="Mandatory security awareness training 2026 - deadline 18 September 2026 > Deadline",
)


@pytest.mark.parametrize(
    ("claim", "resource", "supported"),
    [
        # dev q59, as the model answered it: "security awareness" is only in the memo's
        # title; with it, four of five subject words and the number are in the passage
        ("The mandatory security awareness course takes about 55 minutes.", TITLED, True),
        # the same passage without its title: two of five, the passage is about training
        ("The mandatory security awareness course takes about 55 minutes.", TRAINING, False),
        # the title names the topic, not a value: a number the passage lacks still fails
        ("The mandatory security awareness course takes about 45 minutes.", TITLED, False),
        # and words neither the title nor the passage has are not made up by it
        ("The mandatory fire safety course takes about 55 minutes.", TITLED, False),
    ],
)
def test_the_title_a_passage_sits_under_names_its_topic(embedder, claim, resource, supported):
    (s,) = attribute(claim, [resource], embedder).sentences
    assert (s.n == 1) is supported, (s.reason, s.score, s.quote)
    if supported:
        assert s.quote in resource.text  # the title is never quoted


def test_units_name_what_a_number_counts():
    assert units("an underground garage with 40 parking spaces") == {"park"}
    assert units("Spaces are rented monthly for EUR 35") == {"money"}
    assert units("the cap is €220 per night, or 20% more") == {"money", "%"}


def test_the_lead_in_is_not_part_of_the_claim(embedder):
    claim = "According to the information in the resources, the training takes about 55 minutes."
    (s,) = attribute(claim, [TRAINING], embedder).sentences
    assert s.n == 1
    assert s.text == claim  # shown as written


@pytest.mark.parametrize(
    "answer",
    [
        "The office wifi password is not mentioned in any of the provided resources.",
        "The referral bonus is not explicitly stated in the provided resources. The handbook "
        "caps gifts at EUR 25.",
        "The resources do not specify a dress code.",
    ],
)
def test_a_longer_i_dont_know_is_a_refusal(embedder, answer):
    checked = check_answer(answer, "What is the referral bonus?", [MEALS], embedder,
                           min_similarity=0.45)  # fmt: skip
    assert isinstance(checked, Refusal) and checked.reason == "dont_know"


def test_a_table_rows_number_is_not_a_value(embedder):
    # a retention table flattened by PDF extraction (the public policies set): each row's
    # number starts its description, and the period follows on the next line
    table = Res(
        "21 All records relating to cash transactions where forged or counterfeit Currency "
        "Note or Bank Notes have been used as genuine.\nNot less than 10 Years 22 All "
        "Records related to suspicious transactions, whether or not made in cash.",
        "Policy_Document.pdf",
        20,
    )
    claim = (
        "A record of a transaction involving a forged or counterfeit currency note is "
        "preserved for 10 years."
    )
    (s,) = attribute(claim, [table], embedder).sentences
    assert s.n == 1 and "10 Years" in s.quote, (s.reason, s.score)


@pytest.mark.parametrize(
    ("claim", "named"),
    [
        # the embedded model's answers to two dev questions the documents do not answer
        (
            "Based on the information provided in the resources, the hotel cap per night for "
            "a business trip to New York is EUR 170 per night, including breakfast, in "
            "Germany and Austria [1].",
            "york",
        ),
        ("The hotel cap for a trip to Vienna is EUR 170 per night in Austria.", "vienna"),
        # an acronym: a policy of another company (dev q88)
        ("SAP caps hotels at EUR 170 per night in Germany.", "sap"),
    ],
)
def test_a_name_no_resource_mentions_is_unsupported(embedder, claim, named):
    (s,) = attribute(claim, [HOTELS], embedder).sentences
    assert s.n is None, (s.score, s.quote)
    # the same claim without the name is supported
    bare = attribute("The hotel cap is EUR 170 per night in Germany.", [HOTELS], embedder)
    assert bare.sentences[0].n == 1
    assert s.reason == f"names what no resource does: {named}"


@pytest.mark.parametrize(
    "claim",
    [
        "The mileage allowance is EUR 44 per day.",  # EUR 44 is the meal allowance
        "You receive a daily meal allowance of EUR 0.30.",  # EUR 0.30 is per kilometre
    ],
)
def test_one_shared_word_is_not_enough(embedder, claim):
    resources = [MEALS]
    result = attribute(claim, resources, embedder)
    assert_verbatim(result, resources)
    assert result.sentences[0].n is None, result.sentences[0]


def test_stray_marker_line_and_hedged_refusal(embedder):
    resources = [EXPENSES]
    answer = "I don't know the exact form.\nClaims older than 90 days are rejected.\n[1]"
    result = attribute(answer, resources, embedder)
    assert_verbatim(result, resources)
    assert [s.checked for s in result.sentences] == ["skipped", "added"]
    assert (
        result.text == "I don't know the exact form.\nClaims older than 90 days are rejected [1]."
    )


def test_closest_passages_show_a_shared_sentence_once(embedder):
    # two overlapping chunks of the same page hold the same sentence: shown once
    first = Res(HOTELS.text, "employee_handbook.pdf", 8)
    second = Res(HOTELS.text.split("\n\n", 1)[1], "employee_handbook.pdf", 8)
    answer = "The hotel cap for a trip to New York is EUR 170 per night."
    result = check_answer(
        answer, "Hotel cap in New York?", [first, second], embedder, min_similarity=0.5
    )
    assert isinstance(result, Refusal) and result.reason == "not_found"
    quotes = [(p.source, p.page, p.quote) for p in result.passages]
    assert len(quotes) == len(set(quotes)) == 1, quotes


def test_refusal_carries_no_citations(embedder):
    resources = [BENEFITS, LEAVE]
    answer = "The notice period is 180 days [1]. The referral bonus is about $50 [1]."
    result = check_answer(
        answer, "What is the notice period?", resources, embedder, min_similarity=0.5
    )
    assert isinstance(result, Refusal)
    assert_verbatim(result, resources)
    assert result.citations == ()
    assert result.to_json()["citations"] == []
    assert result.text == NOT_FOUND and result.lead == CLOSEST_LEAD
    assert result.reason == "not_found"
    assert 1 <= len(result.passages) <= 3
    assert len(result.withheld) == 2
    rendered = result.render()
    assert rendered.startswith(NOT_FOUND) and result.passages[0].quote in rendered


def test_dont_know_with_confident_retrieval_shows_a_passage(embedder):
    resources = [EXPENSES, MEALS]
    question = "How long do I have to submit an expense claim?"
    result = check_answer("I don't know.", question, resources, embedder, min_similarity=0.5)
    assert isinstance(result, Refusal)
    assert_verbatim(result, resources)
    assert result.reason == "dont_know" and result.lead == MAY_HELP_LEAD
    assert result.citations == ()
    (p,) = result.passages
    assert p.n == 1 and "30 days" in p.quote and p.page == 5


def test_dont_know_with_weak_retrieval_shows_nothing(embedder):
    resources = [EXPENSES, MEALS]
    question = "How long do I have to submit an expense claim?"
    assert may_help(question, resources, embedder, min_similarity=0.9) is None
    result = check_answer("I don't know.", question, resources, embedder, min_similarity=0.9)
    assert isinstance(result, Refusal) and result.passages == () and result.citations == ()


# --- more behaviour --------------------------------------------------------------------------


def test_number_in_the_neighbouring_sentence(embedder):
    resources = [LEAVE]
    answer = "Leave of more than 15 working days must be requested at least 8 weeks in advance."
    result = attribute(answer, resources, embedder)
    assert_verbatim(result, resources)
    (s,) = result.sentences
    assert s.n == 1
    assert "15 consecutive" in s.quote and "8 weeks" in s.quote  # both sentences quoted


def test_mixed_answer_lists_the_unsupported_sentence(embedder):
    resources = [EXPENSES, MEALS, BENEFITS]
    answer = (
        "Submit expense claims within 30 days [2]. "
        "The mileage rate is 20% [3].\n"
        "- For a full day away you get a meal allowance of EUR 44.\n"
        "- Dr. Smith approves claims above EUR 1,200.50 [9]."
    )
    result = attribute(answer, resources, embedder)
    assert_verbatim(result, resources)
    checked = [(s.n, s.checked) for s in result.sentences]
    assert checked == [(1, "moved"), (None, "dropped"), (2, "added"), (None, "unsupported")]
    assert result.unsupported == (
        "The mileage rate is 20%.",
        "Dr. Smith approves claims above EUR 1,200.50.",  # the invalid [9] is gone too
    )
    assert [c.n for c in result.citations] == [1, 2]  # order of first use
    assert result.text == (
        "Submit expense claims within 30 days [1]. The mileage rate is 20%.\n"
        "- For a full day away you get a meal allowance of EUR 44 [2].\n"
        "- Dr. Smith approves claims above EUR 1,200.50."
    )
    for s in result.sentences:  # start/end locate each sentence, with its marker
        shown = result.text[s.start : s.end]
        assert shown == (s.text if s.n is None else s.text[:-1] + f" [{s.n}].")
    # a partly supported answer stays an answer
    assert isinstance(
        check_answer(answer, "q", resources, embedder, min_similarity=0.5), Attribution
    )


SECURITY = Res(
    "Reporting incidents and lost devices\n"
    "Report a lost or stolen laptop, phone or security key, and any suspected security\n"
    "incident, to the security team at security@larkspur-systems.example within 1 hour of\n"
    "noticing it.",
    "employee_handbook.pdf",
    7,
    0.6,
)


@pytest.mark.parametrize(
    "answer",
    [
        "The email address to report a security incident is [1].",  # the marker as the value
        "A suspected security incident must be reported to the security team by.",
        "You report a suspected security incident to the security team at",  # cut off
    ],
)
def test_a_sentence_that_stops_before_its_value_is_not_supported(embedder, answer):
    resources = [SECURITY]
    result = attribute(answer, resources, embedder)
    (s,) = result.sentences
    assert (s.n, s.checked) in ((None, "dropped"), (None, "unsupported"))
    assert s.reason == "the sentence stops before its value"
    checked = check_answer(
        answer, "Where do I report an incident?", resources, embedder, min_similarity=0.5
    )
    assert isinstance(checked, Refusal) and checked.reason == "not_found"
    assert_verbatim(checked, resources)


@pytest.mark.parametrize(
    "answer",
    [
        "Report a suspected security incident to the security team within 1 hour [1].",
        "A lost phone is what you report to the security team, within 1 hour, and so on.",
    ],
)
def test_complete_sentences_are_not_taken_for_cut_ones(embedder, answer):
    result = attribute(answer, [SECURITY], embedder)
    assert [(s.n, s.reason) for s in result.sentences] == [(1, None)]


def test_kept_marker_wins_over_a_slightly_better_resource(embedder):
    duplicate = Res(EXPENSES.text.replace("Submitting a claim\n", ""), "expenses_copy.pdf", 1)
    resources = [EXPENSES, duplicate]
    result = attribute("Expense claims are submitted within 30 days [2].", resources, embedder)
    assert_verbatim(result, resources)
    assert (result.sentences[0].n, result.sentences[0].checked) == (2, "kept")


def test_malformed_markers(embedder):
    resources = [EXPENSES, MEALS]
    answer = "Claims older than 90 days are rejected [Resource 1, 2]. On arrival days the allowance is EUR 16 [ 2 ]"
    result = attribute(answer, resources, embedder)
    assert_verbatim(result, resources)
    assert [(s.cited, s.n, s.checked) for s in result.sentences] == [
        ((1, 2), 1, "kept"),
        ((2,), 2, "kept"),
    ]
    assert result.text == (
        "Claims older than 90 days are rejected [1]. On arrival days the allowance is EUR 16 [2]"
    )


def test_filler_sentences_are_skipped(embedder):
    resources = [EXPENSES]
    result = check_answer(
        "Yes. Claims older than 90 days are rejected.", "q", resources, embedder, min_similarity=0.5
    )
    assert isinstance(result, Attribution)
    assert_verbatim(result, resources)
    assert [s.checked for s in result.sentences] == ["skipped", "added"]
    assert result.unsupported == ()


def test_one_embedding_call_per_answer(embedder):
    calls: list[int] = []

    def embed(texts: list[str]) -> list[list[float]]:
        calls.append(len(texts))
        return embedder.embed(texts)

    resources = [EXPENSES, MEALS, LEAVE, BENEFITS]
    answer = "Claims older than 90 days are rejected. The meal allowance is EUR 44 per day."
    result = attribute(answer, resources, embed, question="What about expenses?")
    assert_verbatim(result, resources)
    assert len(calls) == 1
    assert not_found(result).passages == result.closest


def test_no_resources(embedder):
    result = attribute("The answer is 42.", [], embedder)
    assert result.unsupported == ("The answer is 42.",) and result.citations == ()


# --- the pure parts ----------------------------------------------------------------------------


def spans(text: str) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text)]


def test_split_sentences_keeps_abbreviations_amounts_and_sections():
    text = "Use e.g. the portal. The fee is $1,200.50 per year. It rises 3.5% in Sec. 4 of the plan. Dr. Hoffmann decides!"
    assert spans(text) == [
        "Use e.g. the portal.",
        "The fee is $1,200.50 per year.",
        "It rises 3.5% in Sec. 4 of the plan.",
        "Dr. Hoffmann decides!",
    ]


def test_split_sentences_bullets_headings_and_wrapped_lines():
    text = (
        "## What changes\n"
        "**Date:** 8 September 2026\n"
        "Meal allowance\n"
        "On business trips you receive a daily meal allowance of EUR 44 for\n"
        "every full day away from home. Done.\n\n"
        "- First item [1]\n"
        "* Second item.\n"
        "1. Numbered one\n"
        "2) Numbered two. [2]"
    )
    assert spans(text) == [
        "What changes",
        "**Date:** 8 September 2026",
        "Meal allowance",
        "On business trips you receive a daily meal allowance of EUR 44 for\n"
        "every full day away from home.",
        "Done.",
        "First item [1]",
        "Second item.",
        "Numbered one",
        "Numbered two. [2]",
    ]


def test_numbers_are_canonical():
    assert numbers("$1,200.50, 3.5% and 35 percent") == {
        ("n", "1200.5"),
        ("%", "3.5"),
        ("%", "35"),
    }
    dates = numbers("2026-09-01, 1 September 2026, September 1st and 31 March")
    assert dates == {("date", "9", "1"), ("n", "2026"), ("date", "3", "31")}
    assert numbers("90 days or three weeks, ten or 10, twenty-five") == {
        ("n", "90"),
        ("n", "3"),
        ("n", "10"),
        ("n", "25"),
    }
    assert numbers("09:00, 9 am, 1 pm and 13:00") == {("time", "9", "0"), ("time", "13", "0")}
    # "one" and ordinals count before a unit only, in a claim
    assert numbers("one of the contacts; first, ask") == frozenset()
    assert numbers("within one hour, from the fourth day") == {("n", "1"), ("n", "4")}
    assert numbers("EUR 0.30 [2]") == {("n", "0.3")}  # markers are not numbers


def test_passage_numbers_support_plain_claims():
    passage = numbers("a supplement of 35 percent from 31 March", claim=False)
    assert numbers("35%") <= passage and numbers("35") <= passage
    assert not numbers("20%") <= numbers("20 days", claim=False)


def test_subject_terms_leave_out_units_and_generic_words():
    assert subject_terms("The mileage rate is 20% per year [1].") == {"mileag", "rate"}
    assert subject_terms("You get 25 days of paid leave per year.") == {"paid", "leav"}
