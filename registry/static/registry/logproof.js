// Recompute a log entry's Merkle root from its leaf hash and audit path (RFC 9162 2.1.3.2),
// with the browser's own SHA-256, and compare it with the checkpoint's root.
"use strict";
(function () {
  const box = document.getElementById("inclusion");
  const button = document.getElementById("check-proof");
  const result = document.getElementById("proof-result");
  if (!box || !button || !result) return;
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const unhex = (text) => new Uint8Array(text.match(/../g).map((h) => parseInt(h, 16)));
  async function node(left, right) {
    const data = new Uint8Array(1 + left.length + right.length);
    data[0] = 1; data.set(left, 1); data.set(right, 1 + left.length);
    return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  }
  async function rootFromProof(leaf, index, size, proof) {
    if (index >= size) throw new Error("index outside the tree");
    let fn = BigInt(index), sn = BigInt(size) - 1n, r = leaf;
    for (const p of proof) {
      if (sn === 0n) throw new Error("the path is longer than the tree is deep");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await node(p, r);
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await node(r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("the path is shorter than the tree is deep");
    return r;
  }
  button.addEventListener("click", async () => {
    if (!window.crypto || !crypto.subtle) {
      result.textContent = "this browser offers no SHA-256 here (the page is not served over HTTPS): use assay log verify";
      return;
    }
    const proof = Array.from(document.querySelectorAll("#proof code"), (c) => unhex(c.textContent.trim()));
    try {
      const root = await rootFromProof(unhex(box.dataset.leaf), Number(box.dataset.index), Number(box.dataset.size), proof);
      const ok = hex(root) === box.dataset.root;
      result.textContent = ok ? "included: the path leads to the checkpoint's root" : "NOT included: the path leads to " + hex(root);
      result.className = ok ? "badge passed" : "badge failed";
    } catch (err) {
      result.textContent = "NOT included: " + err.message;
      result.className = "badge failed";
    }
  });
})();
