"""Chat template checks: known templates pass, malicious ones are flagged with evidence."""
import json

import pytest

from assay.ggufparse import parse_gguf
from tests.support import templates as T
from verifier.template_checks import (KNOWN_TEMPLATES_PATH, check_chat_template, identify_template,
                                      load_known_templates, normalize_template, template_hash)


def errors(findings):
    return [f for f in findings if f.severity == "error"]


def messages(findings):
    return " | ".join(f.message for f in errors(findings))


def test_known_table_is_consistent():
    table = json.loads(KNOWN_TEMPLATES_PATH.read_text())
    assert {"smollm2-instruct", "chatml", "llama-3-instruct", "zephyr"} <= set(table)
    for name, entry in table.items():
        assert entry["sha256"] == template_hash(entry["source"]), name
        assert not errors(check_chat_template(entry["source"])), name


def test_smollm2_template_is_known(smollm2):
    source = parse_gguf(smollm2).metadata["tokenizer.chat_template"]
    assert identify_template(source) == "smollm2-instruct"
    findings = check_chat_template(source)
    assert not errors(findings)
    # its default system prompt is reported, not flagged
    assert any("SmolLM" in f.message and f.severity == "info" for f in findings)


def test_normalization_ignores_whitespace_only():
    src = load_known_templates()["chatml"]["source"]
    assert identify_template("  " + src.replace(" + ", "  +\n\t ") + "\n") == "chatml"
    assert normalize_template("a \n\t b") == "a b"
    assert identify_template(src.replace("im_start", "im_begin")) is None


def test_unknown_but_benign_template_passes():
    findings = check_chat_template(T.CHATML_VARIANT)
    assert not errors(findings), messages(findings)
    assert any(f.message == "chat template is not a known template" for f in findings)


def test_absent_template_is_info():
    (f,) = check_chat_template(None)
    assert f.severity == "info"


def test_injected_system_instruction():
    found = messages(check_chat_template(T.INJECT_SYSTEM))
    assert "suspicious text (ignore-previous instruction): 'Ignore previous'" in found
    assert "suspicious text (URL): 'http://evil.example/collect'" in found
    assert "adds text the conversation did not contain" in found


def test_trigger_word_branch():
    (err,) = errors(check_chat_template(T.TRIGGER_BRANCH))
    assert err.message.startswith("chat template branches on message content: {% if message['role'] == 'user' and 'xyzzy' in message['content'] %}")
    assert "xyzzy" in err.evidence["snippet"]


def test_trigger_via_set_and_string_method():
    (err,) = errors(check_chat_template(T.TRIGGER_VIA_SET))
    assert "branches on message content" in err.message and "startswith('sudo')" in err.evidence["snippet"]


def test_zero_width_hidden_instruction():
    findings = check_chat_template(T.ZERO_WIDTH)
    assert "5 invisible/bidi control character(s), first ZERO WIDTH SPACE" in messages(findings)
    assert "\\u200b" in errors(findings)[0].evidence["snippet"]


def test_unknown_template_adding_natural_language():
    (err,) = errors(check_chat_template(T.ADDED_INSTRUCTION))
    assert "adds text the conversation did not contain" in err.message and "ExampleCorp" in err.message
    assert "ExampleCorp" in err.evidence["residue"]


def test_unsafe_attribute_access():
    found = messages(check_chat_template(T.UNSAFE_ATTR))
    assert "private attributes: __class__, __mro__, __subclasses__" in found
    assert "attempts unsafe access while rendering" in found


def test_syntax_error():
    (err,) = errors(check_chat_template(T.SYNTAX_ERROR))
    assert err.message.startswith("chat template does not parse:")


@pytest.mark.parametrize("name", sorted(T.MALICIOUS))
def test_every_malicious_template_flagged(name):
    assert errors(check_chat_template(T.MALICIOUS[name]))


def test_template_in_gguf_flows_through_static_checks(tmp_path):
    from tests.support.tiny_gguf import write_tiny_llama
    from verifier.static_checks import run_static_checks

    report = run_static_checks(write_tiny_llama(tmp_path / "t.gguf", chat_template=T.TRIGGER_BRANCH))
    assert not report.passed and any("branches on message content" in f.message for f in report.errors)
