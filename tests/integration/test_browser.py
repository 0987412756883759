"""The web UI in a real browser: log in, publish a GGUF signed in the browser with a key made by
`assay keygen`, watch the status turn final live, open the model page.

Headless Chromium is the Debian package (scripts/ensure_chromium.sh installs it when missing),
driven by Playwright for Python; Playwright's own browser downloads are never used.
Screenshots of every step go to test-artifacts/browser/ (git-ignored).
"""
from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from assay.core import dsse, keys, statements
from assay.core.digest import digest_file, file_digests
from tests.support.stack import REPO
from tests.support.tiny_gguf import write_tiny_llama

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "browser"
# A verified release shows its verification level, never a plain "verified".
FINAL = ("converted", "reproduced", "original", "unreproduced", "rejected", "error")
PENDING = ("uploaded", "queued", "verifying")


@pytest.fixture(scope="module")
def chromium():
    result = subprocess.run(["sh", str(REPO / "scripts" / "ensure_chromium.sh")], capture_output=True, text=True, timeout=900)
    if result.returncode != 0 or not Path(CHROMIUM).exists():
        pytest.skip(f"headless Chromium is not available and could not be installed: {result.stderr.strip()[-500:]}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def publisher_home(stack, tmp_path_factory):
    """A CLI home for the admin user with a key from `assay keygen`, registered with `assay keys register`."""
    home = stack.client_home(tmp_path_factory.mktemp("browser-publisher"))
    key_file = home / "config" / "keys" / "default.key"  # $ASSAY_CONFIG_DIR/keys/default.key
    keyid = keys.key_id(keys.load_private_key(key_file, None).public_key())
    return home, keyid, key_file


@pytest.fixture
def page(chromium, stack, request):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.console_messages = []
    p.on("console", lambda m: p.console_messages.append(f"{m.type}: {m.text}"))
    p.on("pageerror", lambda e: p.console_messages.append(f"pageerror: {e}"))
    p.shot = lambda name: p.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{name}.png"), full_page=True)
    yield p
    context.close()


def log_in(page, stack):
    page.goto(stack.url + "/login/")
    page.shot("01-login")
    page.fill("#id_username", stack.admin_user)
    page.fill("#id_password", stack.admin_password)
    page.click("main form button[type=submit]")
    page.wait_for_url(stack.url + "/")
    assert page.locator("header nav").get_by_text(stack.admin_user).count() == 1
    page.shot("02-logged-in")


CHUNK = 8 * 1024 * 1024  # publish.js's upload chunk


def fill_publish_form(page, stack, gguf: Path, keyid: str, key_file: Path, *, model: str, tag: str, quantization: str, card: str) -> None:
    page.goto(stack.url + "/publish")
    page.set_input_files("#file", str(gguf))
    page.select_option("#namespace", "demo")
    page.fill("#model", model)
    page.fill("#tag", tag)
    page.fill("#quantization", quantization)
    page.fill("#card", card)
    page.select_option("#keyid", keyid)
    page.set_input_files("#keyfile", str(key_file))


def publish(page, stack, gguf: Path, keyid: str, key_file: Path, *, model: str, tag: str, quantization: str, card: str,
            reload_after_chunks: int | None = None) -> str:
    """Publish through the form; with reload_after_chunks, reload the page once that many chunks
    are uploaded, then submit the same file again: the upload resumes where it stopped."""
    form = dict(model=model, tag=tag, quantization=quantization, card=card)
    fill_publish_form(page, stack, gguf, keyid, key_file, **form)
    page.shot("03-publish-form")
    page.click("#publish-form button[type=submit]")
    if reload_after_chunks:
        wait_until(page, lambda: (page.text_content("#status") or "").startswith("uploading")
                   and float(page.get_attribute("#progress", "value") or 0) >= reload_after_chunks * CHUNK, timeout=300)
        page.reload()
        page.shot("03-reloaded-mid-upload")
        fill_publish_form(page, stack, gguf, keyid, key_file, **form)
        page.click("#publish-form button[type=submit]")
    release_url = re.compile(re.escape(stack.url) + rf"/demo/{re.escape(model)}/releases/{re.escape(tag)}/\d+$")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if release_url.match(page.url):
            break
        status = page.text_content("#status") if "/publish" in page.url else ""
        if status and status.startswith("error"):
            page.shot("03-publish-error")
            raise AssertionError(f"publishing in the browser failed: {status}\nconsole: {page.console_messages}\n{stack.logs()}")
        time.sleep(0.5)
    else:
        page.shot("03-publish-timeout")
        raise AssertionError(f"no release page after publishing; at {page.url}, status {page.text_content('#status')!r}\nconsole: {page.console_messages}")
    page.wait_for_load_state()
    page.shot("04-release-page")
    return page.url


def watch_status(page, stack, timeout: float) -> list[str]:
    """Badge texts seen on the open release page, until a final one; the test never reloads."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = (page.text_content("#status", timeout=5000) or "").strip()
        except Exception:  # the page reloads itself once the status is final
            continue
        if not seen or seen[-1] != text:
            seen.append(text)
        if text in FINAL:
            page.wait_for_load_state()
            page.shot("05-final-status")
            return seen
        time.sleep(0.5)
    page.shot("05-status-timeout")
    raise AssertionError(f"status never became final: {seen}\n{stack.logs()}")


def wait_until(page, condition, timeout: float = 30) -> None:
    """Poll the page from the test, not with page.wait_for_function: that evaluates a string in
    the page, which the registry's Content-Security-Policy (no 'unsafe-eval') rightly blocks."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            page.shot("wait-timeout")
            raise AssertionError(f"timed out after {timeout} s; status: {page.text_content('#status')!r}")
        time.sleep(0.1)


def open_model_page(page, stack, model: str, expect_status: str | None) -> None:
    page.click("header a.brand")
    page.wait_for_url(stack.url + "/")
    page.click(f"main a[href='/demo/{model}']")
    page.wait_for_url(stack.url + f"/demo/{model}")
    assert page.locator("main > h1").inner_text() == f"demo/{model}"
    assert "assay pull demo/" in page.content()
    if expect_status:
        assert page.locator("table .badge", has_text=expect_status).count() >= 1
    assert page.locator(".card h1").inner_text() == "Browser test"
    page.shot("06-model-page")


def test_publish_tiny_gguf_and_watch_status_live(page, stack, publisher_home, tmp_path):
    _, keyid, key_file = publisher_home
    gguf = write_tiny_llama(tmp_path / "tiny.gguf")
    log_in(page, stack)
    url = publish(page, stack, gguf, keyid, key_file, model="browser-tiny", tag="f16", quantization="F16", card="# Browser test\n\nA tiny model.")
    first = (page.text_content("#status") or "").strip()
    seen = watch_status(page, stack, timeout=600)
    assert first in PENDING, f"the release page opened with status {first!r}; expected it to be still pending"
    assert seen[0] in PENDING and seen[-1] in FINAL, seen
    assert page.url == url
    print(f"tiny model status went {' -> '.join(seen)}: {page.text_content('#reason')}")
    # The steps table shows every step's outcome once final.
    assert page.locator("#steps tr[data-step]").count() == 4
    # The page hashed the file with SHA-256 and BLAKE3 (hash-wasm) and declared both; a verdict
    # that passed checked the BLAKE3 against the bytes and repeats it.
    bundle = httpx.get(f"{stack.url}/api/v1/releases/demo/browser-tiny:f16?any=1", headers={"Authorization": f"Bearer {stack.token}"}).json()
    stmt = statements.parse_release_statement(dsse.parse_envelope(bundle["release_envelope"]).payload)
    assert stmt.blake3 == dict([file_digests(gguf)])
    if bundle["verdict_envelope"]:
        verdict = statements.parse_verdict_statement(dsse.parse_envelope(bundle["verdict_envelope"]).payload)
        assert verdict.subject_blake3 == file_digests(gguf)[1] or not verdict.passed
    open_model_page(page, stack, "browser-tiny", expect_status=None)


def upload_requests(stack) -> dict[str, list[str]]:
    """Upload id -> the methods the web server's access log shows for it, in order."""
    seen: dict[str, list[str]] = {}
    for m in re.finditer(r'"(GET|PATCH|PUT) /api/v1/uploads/([0-9a-f-]+)', (stack.root / "logs" / "web.log").read_text()):
        seen.setdefault(m.group(2), []).append(m.group(1))
    return seen


def test_publish_smollm2_through_the_browser_turns_verified(page, stack, publisher_home, smollm2):
    """Also: a page reload in the middle of the upload, then the same file again, resumes the
    upload (the progress survives the reload) instead of starting over."""
    _, keyid, key_file = publisher_home
    log_in(page, stack)
    before = set(upload_requests(stack))
    publish(page, stack, smollm2, keyid, key_file, model="browser-smollm2", tag="q4_1", quantization="Q4_1",
            card="# Browser test\n\nSmolLM2-135M-Instruct, Q4_1.", reload_after_chunks=3)
    uploads = {k: v for k, v in upload_requests(stack).items() if k not in before}
    assert len(uploads) == 1, uploads  # one upload session across the reload
    methods = next(iter(uploads.values()))
    chunks = -(-smollm2.stat().st_size // CHUNK)
    assert "GET" in methods  # the reloaded page asked where the upload stood
    assert methods.count("PATCH") <= chunks + 1, methods  # at most the chunk in flight at the reload was sent twice
    assert methods[-1] == "PUT"
    first = (page.text_content("#status") or "").strip()
    seen = watch_status(page, stack, timeout=900)
    assert first in PENDING, first
    assert seen[-1] == "unreproduced", (seen, page.text_content("#reason"), stack.logs())  # a Q4_1 without a base
    for step in ("static", "probes", "attest"):
        assert page.locator(f"#steps tr[data-step={step}] .badge").inner_text() == "passed", step
    page.reload()  # the level row is rendered with the page
    assert "a quantized file published without a base" in page.text_content("#level")
    open_model_page(page, stack, "browser-smollm2", expect_status="unreproduced")


def test_recipe_file_from_assay_quantize_is_checked_before_upload(page, stack, publisher_home, tmp_path):
    """The recipe box takes the file `assay quantize` writes; one written for other bytes, or a
    base without a recipe, is refused in the browser before anything is uploaded."""
    _, keyid, key_file = publisher_home
    gguf = write_tiny_llama(tmp_path / "tiny-recipe.gguf", extra_kv={"general.name": "recipe-check"})  # bytes never uploaded before
    log_in(page, stack)
    page.goto(stack.url + "/publish")
    page.set_input_files("#file", str(gguf))
    page.select_option("#namespace", "demo")
    page.fill("#model", "browser-recipe")
    page.fill("#tag", "q8_0")
    page.fill("#quantization", "Q8_0")
    page.select_option("#keyid", keyid)
    page.set_input_files("#keyfile", str(key_file))
    page.fill("#base", "demo/browser-tiny:f16")
    page.click("#publish-form button[type=submit]")
    wait_until(page, lambda: (page.text_content("#status") or "").startswith("error"))
    assert "no recipe" in page.text_content("#status")
    recipe_file = {"recipe": {"tool": "llama.cpp", "ftype": "Q8_0"}, "base_digest": None, "output_digest": "sha256:" + "0" * 64}
    page.fill("#recipe", json.dumps(recipe_file))
    page.fill("#base", "")
    page.click("#publish-form button[type=submit]")
    wait_until(page, lambda: "base release" in (page.text_content("#status") or ""))
    page.fill("#base", "demo/browser-tiny:f16")
    page.click("#publish-form button[type=submit]")
    wait_until(page, lambda: "does not match its recipe file" in (page.text_content("#status") or ""))
    page.shot("recipe-refused")
    r = httpx.head(f"{stack.url}/api/v1/blobs/{digest_file(gguf)}", headers={"Authorization": f"Bearer {stack.token}"})
    assert r.status_code == 404  # nothing was uploaded


def test_pages_fit_a_390_pixel_phone_screen(chromium, stack, publisher_home, tmp_path):
    """No page scrolls sideways at 390 px: long digests, commands and tables wrap or scroll inside
    their own box (the model page with its GGUF panel and usage snippets, the release page with
    its inputs and evidence, the trust page)."""
    from tests.support.hf_checkpoint import tiny_llama_checkpoint

    home, _, _ = publisher_home
    out = tmp_path / "tiny-phone.f16.gguf"
    stack.assay(home, "convert", str(tiny_llama_checkpoint(tmp_path / "tiny-phone", seed=5)), "-o", str(out))
    stack.assay(home, "publish", str(out), "demo/tiny-phone:f16")
    assert stack.wait_status("demo/tiny-phone:f16", timeout=900)["status"] == "verified"
    context = chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    try:
        for path in ("/", "/demo/tiny-phone", "/demo/tiny-phone/releases/f16/1", "/trust", "/login/", "/log/", "/log/1"):
            page.goto(stack.url + path)
            page.screenshot(path=str(ARTIFACTS / f"phone{path.replace('/', '_') or '_home'}.png"), full_page=True)
            width = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert width[0] <= width[1], f"{path} is {width[0]} px wide on a {width[1]} px screen"
    finally:
        context.close()


def test_publish_page_reads_the_quantization_from_the_file_and_the_base_from_the_recipe(page, stack, publisher_home, smollm2, tmp_path):
    """Choosing a file fills the quantization from its GGUF header (SmolLM2's header is megabytes of
    vocabulary, read in pieces); pasting the recipe `assay quantize` wrote fills the base release
    from the recipe's base digest."""
    home, _, _ = publisher_home
    base = write_tiny_llama(tmp_path / "tiny-base-for-page.gguf", extra_kv={"general.name": "publish page base"})
    stack.assay(home, "publish", str(base), "demo/page-base:f16")
    quant = tmp_path / "tiny-page-Q8_0.gguf"
    stack.assay(home, "quantize", str(base), "--type", "Q8_0", "-o", str(quant))
    log_in(page, stack)
    page.goto(stack.url + "/publish")
    page.set_input_files("#file", str(smollm2))
    wait_until(page, lambda: page.input_value("#quantization") == "Q4_1", timeout=60)
    page.set_input_files("#file", str(quant))
    wait_until(page, lambda: page.input_value("#quantization") == "Q8_0")
    assert "general.file_type" in page.text_content("#file-info")
    page.fill("#recipe", Path(str(quant) + ".recipe.json").read_text())
    wait_until(page, lambda: page.input_value("#base") == "demo/page-base:f16")
    page.shot("publish-page-filled")
    assert not [m for m in page.console_messages if "error" in m.lower()], page.console_messages


def test_log_browser_shows_entries_and_checks_an_inclusion_proof_in_the_browser(page, stack, publisher_home):
    page.goto(stack.url + "/log/")
    rows = page.locator("#log-entries tr[data-index]")
    assert rows.count() >= 1
    newest = int(rows.first.get_attribute("data-index"))
    page.click(f"#log-entries a[href='/log/{newest}']")
    page.wait_for_url(stack.url + f"/log/{newest}")
    assert page.locator("main > h1").inner_text() == f"Log entry {newest}"
    page.click("#check-proof")
    wait_until(page, lambda: (page.text_content("#proof-result") or "").startswith("included"))
    if page.locator("#proof code").count():
        page.evaluate("() => { document.querySelector('#proof code').textContent = '00'.repeat(32); }")
    else:  # a one-entry tree has an empty path: alter the leaf instead
        page.evaluate("() => { document.getElementById('inclusion').dataset.leaf = '00'.repeat(32); }")
    page.click("#check-proof")
    wait_until(page, lambda: (page.text_content("#proof-result") or "").startswith("NOT included"))
    page.shot("log-entry")
    # An anonymous reader sees what the log API serves; a missing entry is a 404.
    assert httpx.get(f"{stack.url}/log/{10**12}").status_code == 404
    assert httpx.get(f"{stack.url}/log/?before=x").status_code == 404
