// Browser publishing: resumable chunked upload, in-browser hashing (hash-wasm, vendored and loaded
// by the page before this module: the file's SHA-256 names it, its BLAKE3 is declared beside it
// for clients to check downloads by),
// the release statement built by the registry's one builder (POST /api/v1/releases/statement) and
// signed here with the publisher's own Ed25519 key (WebCrypto), never sending the key anywhere.

const CHUNK = 8 * 1024 * 1024;
const $ = id => document.getElementById(id);
const csrf = () => document.querySelector("[name=csrfmiddlewaretoken]").value;

async function api(method, url, body, headers = {}) {
  const r = await fetch(url, {method, body, credentials: "same-origin", headers: {"X-CSRFToken": csrf(), ...headers}});
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || `${method} ${url}: HTTP ${r.status}`);
  return data;
}

const utf8 = s => new TextEncoder().encode(s);
const b64 = bytes => btoa(Array.from(bytes, c => String.fromCharCode(c)).join(""));
function pae(type, payload) {
  const head = utf8(`DSSEv1 ${utf8(type).length} ${type} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length); out.set(head); out.set(payload, head.length); return out;
}
async function importPrivateKey(file) {
  const pem = await file.text();
  if (pem.includes("ENCRYPTED")) throw new Error("this key file is encrypted; use an unencrypted key or sign with the CLI");
  const der = Uint8Array.from(atob(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "")), c => c.charCodeAt(0));
  try {
    return await crypto.subtle.importKey("pkcs8", der, {name: "Ed25519"}, false, ["sign"]);
  } catch (e) {
    throw new Error("this page signs with Ed25519 keys only; publish with `assay publish` for an ECDSA P-256 key");
  }
}

// The file's quantization, read from its GGUF header (general.file_type) and named as
// `assay publish` names it (assay/ggufparse.file_type_name, sent in the page as #file-types).
const FILE_TYPES = JSON.parse(document.getElementById("file-types").textContent);
const FIXED_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8};
const HEADER_LIMIT = 256 * 1024 * 1024;

async function readFileType(file) {
  let buf = new Uint8Array(0), pos = 0;
  async function need(n) {
    if (pos + n <= buf.length) return;
    const want = Math.max(pos + n, buf.length * 2, 1 << 20);
    if (want > HEADER_LIMIT || buf.length >= file.size) throw new Error("the GGUF header ends early or is too large");
    buf = new Uint8Array(await file.slice(0, Math.min(want, file.size)).arrayBuffer());
    if (pos + n > buf.length) throw new Error("the GGUF header ends early");
  }
  const view = () => new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  async function u32() { await need(4); const v = view().getUint32(pos, true); pos += 4; return v; }
  async function u64() { await need(8); const v = view().getBigUint64(pos, true); pos += 8; if (v > 2n ** 52n) throw new Error("a GGUF count is too large"); return Number(v); }
  async function str() { const n = await u64(); await need(n); const t = new TextDecoder().decode(buf.subarray(pos, pos + n)); pos += n; return t; }
  async function skip(type) {
    if (type in FIXED_SIZES) { await need(FIXED_SIZES[type]); pos += FIXED_SIZES[type]; return; }
    if (type === 8) { const n = await u64(); await need(n); pos += n; return; }
    if (type === 9) {
      const inner = await u32(), count = await u64();
      if (inner in FIXED_SIZES) { const n = FIXED_SIZES[inner] * count; await need(n); pos += n; return; }
      for (let i = 0; i < count; i++) await skip(inner);
      return;
    }
    throw new Error(`unknown GGUF value type ${type}`);
  }
  await need(24);
  if (new TextDecoder().decode(buf.subarray(0, 4)) !== "GGUF") throw new Error("not a GGUF file");
  pos = 4; await u32(); await u64();
  const kvs = await u64();
  for (let i = 0; i < kvs; i++) {
    const key = await str(), type = await u32();
    if (key === "general.file_type" && type in FIXED_SIZES && type !== 6) {
      await need(FIXED_SIZES[type]);
      const v = FIXED_SIZES[type] === 8 ? Number(view().getBigUint64(pos, true)) : FIXED_SIZES[type] === 4 ? view().getUint32(pos, true) : buf[pos];
      const name = FILE_TYPES.names[String(v & ~FILE_TYPES.guessed)];
      return name || `unknown(${v})`;
    }
    await skip(type);
  }
  return null;
}

async function fileChosen() {
  const file = $("file").files[0], info = $("file-info");
  if (!file) return;
  info.textContent = "reading the header…";
  try {
    const name = await readFileType(file);
    if (name) { $("quantization").value = name; info.textContent = `quantization ${name} (general.file_type)`; }
    else info.textContent = "the file names no general.file_type: type its quantization";
  } catch (e) { info.textContent = "error: " + e.message; }
}

// A recipe from `assay quantize` names its base by digest: find the release of that file.
async function recipeChanged() {
  const info = $("base-info");
  let doc;
  try { doc = parseRecipe($("recipe").value.trim()); } catch (e) { info.textContent = "error: " + e.message; return; }
  if (!doc || !doc.base_digest || $("base").value.trim()) { info.textContent = ""; return; }
  const r = await fetch(`/api/v1/releases?digest=${encodeURIComponent(doc.base_digest)}`, {credentials: "same-origin"});
  const found = await r.json();
  if (!r.ok) { info.textContent = "error: " + found.error; return; }
  if (!found.releases.length) { info.textContent = `no release you can see has the base file ${doc.base_digest}: publish the base first`; return; }
  $("base").value = found.releases[0].reference;
  info.textContent = `the release of ${doc.base_digest.slice(0, 19)}…` + (found.releases.length > 1 ? ` (${found.releases.length} releases have it; the newest is chosen)` : "");
}

// Both digests in one read of the file: {digest: "sha256:…", blake3: "blake3:…"}.
async function hashFile(file, onProgress) {
  const sha = await hashwasm.createSHA256(), b3 = await hashwasm.createBLAKE3();
  sha.init(); b3.init();
  for (let off = 0; off < file.size; off += CHUNK) {
    const chunk = new Uint8Array(await file.slice(off, off + CHUNK).arrayBuffer());
    sha.update(chunk); b3.update(chunk);
    onProgress(Math.min(off + CHUNK, file.size));
  }
  return {digest: "sha256:" + sha.digest("hex"), blake3: "blake3:" + b3.digest("hex")};
}

async function upload(file, digest, onProgress) {
  const key = `assay-upload:${file.name}:${file.size}:${file.lastModified}`;
  let id = localStorage.getItem(key), offset = 0;
  if (id) { try { offset = (await api("GET", `/api/v1/uploads/${id}`)).offset; } catch (e) { id = null; } }
  if (!id) { id = (await api("POST", "/api/v1/uploads", "{}")).upload_id; localStorage.setItem(key, id); }
  while (offset < file.size) {
    const end = Math.min(offset + CHUNK, file.size);
    const res = await api("PATCH", `/api/v1/uploads/${id}`, file.slice(offset, end),
                          {"Content-Range": `bytes ${offset}-${end - 1}/${file.size}`, "Content-Type": "application/octet-stream"});
    offset = res.offset; onProgress(offset);
  }
  const done = await api("PUT", `/api/v1/uploads/${id}?digest=${digest}`);
  localStorage.removeItem(key);
  return done;
}

// The recipe box takes what `assay quantize` writes (OUT.gguf.recipe.json: {recipe, base_digest,
// output_digest}) or a bare recipe object, as `assay publish` does (assay/client/publish.py load_recipe).
function parseRecipe(text) {
  if (!text) return null;
  let doc;
  try { doc = JSON.parse(text); } catch (e) { throw new Error("the recipe is not valid JSON: " + e.message); }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new Error("the recipe must be a JSON object");
  if (doc.recipe && typeof doc.recipe === "object") return {recipe: doc.recipe, base_digest: doc.base_digest || null, output_digest: doc.output_digest || null};
  return {recipe: doc, base_digest: null, output_digest: null};
}

async function publish(ev) {
  ev.preventDefault();
  const status = $("status"), bar = $("progress");
  const say = msg => { status.textContent = msg; };
  try {
    const file = $("file").files[0], keyFile = $("keyfile").files[0];
    if (!file) throw new Error("choose a GGUF file");
    const ns = $("namespace").value, model = $("model").value.trim(), tag = $("tag").value.trim();
    const ref = `${ns}/${model}:${tag}`;
    const recipeDoc = parseRecipe($("recipe").value.trim());
    const baseRef = $("base").value.trim();
    if (recipeDoc && !baseRef) throw new Error("a quant with a recipe needs its base release (ns/model:tag)");
    if (baseRef && !recipeDoc) throw new Error("a base was given but no recipe: paste the recipe file `assay quantize` wrote");
    if (baseRef) {  // a base the registry does not show stops here, before the upload
      const r = await fetch(`/api/v1/releases/${baseRef}?any=1`, {credentials: "same-origin"}); const b = await r.json();
      if (!r.ok) throw new Error(`base ${baseRef}: ${b.error}`);
      if (recipeDoc.base_digest && recipeDoc.base_digest !== b.file.digest)
        throw new Error(`the recipe's base digest ${recipeDoc.base_digest} is not ${baseRef} (${b.file.digest})`);
    }
    bar.max = file.size;
    say("hashing…"); const {digest, blake3: blake3Digest} = await hashFile(file, n => { bar.value = n; });
    if (recipeDoc && recipeDoc.output_digest && recipeDoc.output_digest !== digest)
      throw new Error(`${file.name} does not match its recipe file (the recipe was written for ${recipeDoc.output_digest})`);
    if (!keyFile) throw new Error("choose your private key file (it stays in this browser)");
    const privateKey = await importPrivateKey(keyFile);
    say("uploading…"); bar.value = 0; await upload(file, digest, n => { bar.value = n; });
    const card = $("card").value;
    // The registry builds the statement with the same code as `assay publish`; this page signs it.
    const draft = await api("POST", "/api/v1/releases/statement", JSON.stringify({
      file_name: file.name, digest, blake3: blake3Digest, reference: ref, quantization: $("quantization").value.trim(), base: baseRef || null,
      recipe: recipeDoc ? recipeDoc.recipe : null, recipe_base_digest: recipeDoc ? recipeDoc.base_digest : null, model_card: card,
    }), {"Content-Type": "application/json"});
    const payload = Uint8Array.from(atob(draft.payload), c => c.charCodeAt(0));
    const signed = JSON.parse(new TextDecoder().decode(payload));
    if (signed.subject[0].digest.sha256 !== digest.slice(7) || signed.subject[0].digest.blake3 !== blake3Digest.slice(7) || signed.predicate.namespace !== ns || signed.predicate.model !== model || signed.predicate.tag !== tag)
      throw new Error("the registry's statement does not name this file and release; nothing was signed");
    const type = "application/vnd.in-toto+json";
    const sig = new Uint8Array(await crypto.subtle.sign({name: "Ed25519"}, privateKey, pae(type, payload)));
    const envelope = {payloadType: type, payload: draft.payload, signatures: [{keyid: $("keyid").value, sig: b64(sig)}]};
    say("creating the release…");
    const res = await api("POST", "/api/v1/releases", JSON.stringify({envelope, model_card: card}), {"Content-Type": "application/json"});
    location.href = res.web_url;
  } catch (e) { say("error: " + e.message); }
}

async function publishSigned(ev) {
  ev.preventDefault();
  try {
    const envelope = JSON.parse($("envelope").value);
    const res = await api("POST", "/api/v1/releases", JSON.stringify({envelope, model_card: $("envelope-card").value}), {"Content-Type": "application/json"});
    location.href = res.web_url;
  } catch (e) { $("envelope-status").textContent = "error: " + e.message; }
}

document.addEventListener("DOMContentLoaded", () => {
  $("publish-form").addEventListener("submit", publish);
  $("file").addEventListener("change", fileChosen);
  $("recipe").addEventListener("input", recipeChanged);
  $("envelope-form").addEventListener("submit", publishSigned);
});
