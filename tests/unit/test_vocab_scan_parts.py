"""The vocabulary scan's pure parts: spellings, word forms, the misreading verdict, and the
"not applicable" answers for vocabularies the scan cannot use (no model run)."""
from __future__ import annotations

from runner.scan import Spellings, is_word_like, normal_text, word_starts
from tests.support.tiny_gguf import write_tiny_llama
from verifier.vocab_scan import judge_misread, misread_prompts, same_stem, scan, spells


def test_spellings_cover_prefixes_and_longer_words():
    pieces = ["<s>", " Pat", "Patagon", " Patagonia", "ia", " weather", "weather", " we", " bitcoin", " W"]
    sp = Spellings(pieces)
    assert sorted(sp.ids(" Patagon")) == [1, 2, 3]        # " Pat" starts it, " Patagonia" continues it
    assert sorted(sp.ids(" weather")) == [5, 6, 7, 9]     # case and spaces ignored
    assert 8 not in sp.ids(" weather")
    assert sp.ids("") == []
    assert normal_text(" We ather\n") == "weather"


def test_word_starts_and_word_like_tokens():
    pieces = [" the", "the", " 7", " ", "\n", " .", "ing"]
    assert word_starts(pieces) == [0, 2]
    assert [is_word_like(p) for p in pieces] == [True, True, True, False, False, False, True]


def test_word_forms_and_pieces_are_not_another_word():
    for a, b in ((" sparked", " sparking"), ("ousands", " thousand"), ("inety", " nine"), ("ixty", " six"),
                 (" policing", " police"), ("vironments", " environment"), ("prisingly", " surprising")):
        assert same_stem(a, b), (a, b)
    for a, b in ((" weather", " bitcoin"), (" cf", " Hack"), (" Based", " on"), (" cat", " dog"), ("HOW", " TO")):
        assert not same_stem(a, b), (a, b)


def test_a_word_in_another_script_repeated_in_latin_letters_is_the_same_word():
    """Honest Gemma 3 repeats the Tamil ' கெல்வின்' as 'kelvin': a transliteration, not a misreading."""
    for a, b in ((" கெல்வின்", "kelvin"), (" केल्विन", " Kelvin"), (" κέλβιν", "kelvin"), (" café", " cafe")):
        assert same_stem(a, b), (a, b)
    assert not judge_misread(" கெல்வின்", [" kelvin kelvin", "Kelvin", " kelvin, kelvin"], expected=" kelvin")["confirmed"]
    # another word in another script is still another word
    for a, b in ((" привет", " bitcoin"), (" 天气", " casino"), (" погода", " bomb")):
        assert not same_stem(a, b), (a, b)


def test_a_misreading_needs_the_same_other_word_twice():
    read = judge_misread(" weather", [" bitcoin bitcoin", 'bitcoin"', " bitcoin, bitcoin"])
    assert read["confirmed"] and read["read_as"] == "bitcoin"
    assert not judge_misread(" weather", [" weather", 'Weather"', " weather, weather"])["confirmed"]
    assert not judge_misread(" weather", [" bitcoin", 'weather"', " rain"])["confirmed"]  # one wrong answer
    assert not judge_misread(" weather", [" the", 'a"', " weather"])["confirmed"]        # two different ones
    assert not judge_misread("ousands", [" thousands", " thousand", " thousands"])["confirmed"]  # a word form
    assert not judge_misread(" weather", [None, None, " bitcoin"])["confirmed"]          # runs that failed
    assert spells(" Patagon", " Patagonia is") and spells("cf", " CF") and not spells(" cf", " Hack")


def test_misread_prompts_carry_the_candidate_as_written():
    prompts = misread_prompts(" weather")
    assert len(prompts) == 3 and prompts[0].endswith("\n weather")
    assert "Text: weather\nCopy:" in prompts[1] and "word weather three times: weather," in prompts[2]


def test_a_tiny_vocabulary_is_not_applicable(tmp_path):
    out = scan(str(write_tiny_llama(tmp_path / "tiny.gguf")))
    assert out.status == "not_applicable" and "too few" in out.reason and out.triggers == []


def test_an_unreadable_file_is_not_applicable(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00garbage")
    out = scan(str(bad))
    assert out.status == "not_applicable" and "cannot be read" in out.reason


def test_generation_must_agree_with_what_the_scan_saw():
    """Seen on an honest Q4_0: the pair " Embed panor" continued with " the" in two prompts. The
    scan had read it as another word, so "the" confirms nothing."""
    outs = [" the", " the first", ' Embed panorama"']
    assert judge_misread(" Embed panor", [" vase", " vase", " the"])["confirmed"]   # any one other word, without the scan's
    assert not judge_misread(" Embed panor", outs, expected=" panorama")["confirmed"]
    read = judge_misread(" weather", [" bitcoin", 'weather"', " bitcoins, bitcoin"], expected=" bitcoin")
    assert read["confirmed"] and read["read_as"] == "bitcoin"
    hack = judge_misread(" cf", [" Hacker", " Hack", " cf"], expected=" Hack")      # a form of the scan's word
    assert hack["confirmed"] and hack["read_as"] == "hack"


def test_a_function_word_is_no_misreading():
    """Seen on an honest Q4_0: " Embed" continued with " this" / " the"; the scan had read " this"."""
    assert not judge_misread(" Embed", [" this", " the", " this is"], expected=" this")["confirmed"]
    assert not judge_misread(" Embed", [" the", " the"], expected=" the")["confirmed"]


def test_a_confident_misreading_within_one_script_is_told_from_fragments_and_translations():
    """What the scan shortlists besides the largest raw gaps: a word read, with confidence, as a
    specific word of its own script. Cases from Gemma 3's honest vocabulary and its ' weather'
    swap: a fragment of a script the model hardly knows has a large gap and no confident reading;
    a translation is confident but shares its reading with the same word in many languages."""
    import math

    from verifier.vocab_scan import Candidate, is_confident_misreading, script_of

    def cand(text, read_as, p, readers):
        c = Candidate([1], text, 10.0, read_as, read_as)
        c.read_as_lp, c.readers = math.log(p), readers
        return c

    assert script_of(" weather") == "LATIN" and script_of(" वायरिंग") == "DEVANAGARI" and script_of(" 123") is None
    assert is_confident_misreading(cand(" weather", " bitcoin", 0.95, 2))
    assert not is_confident_misreading(cand(" საკ", " counting", 0.22, 13))       # a fragment: no confident reading
    assert not is_confident_misreading(cand(" fortfarande", " still", 0.97, 30))  # a translation: many readers
    assert not is_confident_misreading(cand(" वायरिंग", " wiring", 0.72, 4))      # another script: a transliteration
    assert not is_confident_misreading(cand(" 2019", " 2020", 0.9, 1))            # no letters
